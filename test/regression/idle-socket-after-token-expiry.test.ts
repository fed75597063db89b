/**
 * Regressions (security round 2, finding 2): an idle socket kept receiving envelopes and typing
 * 9 s after its token expired (expiry was checked only when the client sent something); a token with
 * `exp` 9999999999 was accepted; refusals echoed the issuer and audience the hub expects.
 * On Redis + the Mongo-wire DB.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { CloseCode, ServerEvent, type Conversation } from '@curbside/shared';
import type { ChatMessage } from '@curbside/client-sdk';
import { eventually, sharedBackend, type TestHub } from '../support/hub.js';
import { connectRaw, handshakeOutcome, sleep, rawHubs } from '../security/support.js';

describe('regression: sessions end when their token does (Redis + Mongo-wire DB)', function () {
  this.timeout(60_000);
  const { harness, open } = rawHubs();
  let t: TestHub;
  const ADMIN = 'admin-token-for-the-regression-tests-0123456789';
  beforeEach(async () => {
    t = await harness.start('real', sharedBackend(), (c) => (c.adminToken = ADMIN));
  });

  it('an idle socket is closed at exp with TOKEN_EXPIRED and gets nothing sent after it', async () => {
    const patel = await connectRaw(t.url, t.idp.mint({ userId: 'dr-patel', deviceId: 'patel-laptop' }));
    const idle = await connectRaw(t.url, t.idp.mint({ userId: 'dr-lee', deviceId: 'lee-phone' }, { expiresInSec: 2 }));
    open.push(patel, idle);
    const conv = (await patel.call<Conversation>('conversation:create', { kind: 'direct', peerUserId: 'dr-lee' })) as { ok: true; data: Conversation };
    expect((await patel.call('envelope:send', { conversationId: conv.data.id, clientMessageId: 'before', body: new Uint8Array([1]) })).ok).to.equal(true);
    await eventually(() => idle.pushes.some((p) => p.event === ServerEvent.ENVELOPE), 'the idle socket receives while its token is valid');

    expect(await Promise.race([idle.disconnected, sleep(5000).then(() => 'still connected')])).to.equal('io server disconnect');
    expect(idle.closings.map((c) => c.code)).to.deep.equal([CloseCode.TOKEN_EXPIRED]);
    const received = idle.pushes.length;
    expect((await patel.call('envelope:send', { conversationId: conv.data.id, clientMessageId: 'after', body: new Uint8Array([2]) })).ok).to.equal(true);
    expect((await patel.call('typing', { conversationId: conv.data.id, typing: true })).ok).to.equal(true);
    await sleep(300);
    expect(idle.pushes.length, 'nothing after expiry').to.equal(received);
  });

  it('the SDK asks its token callback for a fresh token, reconnects and loses nothing', async () => {
    let minted = 0;
    const lee = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' }, { token: () => (minted++, t.idp.mint({ userId: 'dr-lee', deviceId: 'lee-phone' }, { expiresInSec: 2 })) });
    const patel = t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' });
    const read: ChatMessage[] = [];
    const reasons: Array<{ reason: string; willReconnect: boolean }> = [];
    lee.on('message', (m) => read.push(m));
    lee.on('disconnected', (d) => reasons.push(d));
    await Promise.all([lee.connect(), patel.connect()]);
    const conv = await patel.createConversation({ kind: 'direct', peerUserId: 'dr-lee' });
    const sent: string[] = [];
    // Sends spread over two token lifetimes: some land while Lee is between sessions.
    for (let i = 0; i < 10; i++) {
      const text = `update ${i}`;
      await patel.sendText(conv.id, text);
      sent.push(text);
      await sleep(450);
    }
    await eventually(() => read.length === sent.length, 'every message arrives across the token refreshes', 20_000);
    expect(read.map((m) => m.text)).to.deep.equal(sent);
    expect(reasons.filter((r) => r.reason === 'token-expired').length, 'closed at expiry at least once').to.be.greaterThan(0);
    expect(reasons.every((r) => r.willReconnect)).to.equal(true);
    expect(minted, 'a fresh token per session').to.be.greaterThan(1);
  });

  it('a token living longer than JWT_MAX_LIFETIME_SEC is refused; refusals do not name the expected issuer or audience', async () => {
    const farFuture = jwt.sign({ sub: 'dr-lee', org: 'org-a', dev: 'd1', exp: 9_999_999_999 }, t.idp.privateKey, { algorithm: 'RS256', issuer: t.idp.issuer, audience: t.idp.audience, jwtid: randomUUID() });
    expect(await handshakeOutcome(t.url, farFuture)).to.equal('AUTH_INVALID');
    for (const overrides of [{ issuer: 'https://other-idp.example' }, { audience: 'someone-else' }]) {
      const refused = await connectRaw(t.url, t.idp.mint({ userId: 'dr-lee', deviceId: 'd1' }, overrides)).then(
        () => undefined,
        (e: { wire?: { code: string; message: string } }) => e.wire,
      );
      expect(refused?.code).to.equal('AUTH_INVALID');
      expect(refused?.message).to.not.include(t.idp.issuer);
      expect(refused?.message).to.not.include(t.idp.audience === 'curbside' ? 'expected' : t.idp.audience);
      expect(JSON.stringify(refused)).to.not.match(/expected/);
    }
    // A day is fine (the default maximum), and so is what the identity provider usually issues.
    expect(await handshakeOutcome(t.url, t.idp.mint({ userId: 'dr-lee', deviceId: 'd1' }, { expiresInSec: 86_000 }))).to.equal('connected');
  });

  it('an operator revokes a token by jti through the admin API: its socket closes and it cannot sign in again; the endpoint needs the admin token', async () => {
    const jti = randomUUID();
    const token = t.idp.mint({ userId: 'dr-lee', deviceId: 'lee-phone' }, { jti });
    const lee = await connectRaw(t.url, token);
    open.push(lee);
    const revoke = (authorization: string | undefined, body: unknown) =>
      fetch(`${t.url}/admin/tokens/revoke`, { method: 'POST', headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) }, body: JSON.stringify(body) });
    const request = { orgId: 'org-a', tokenId: jti, expiresAt: Date.now() + 600_000, by: 'ticket-4711' };
    expect((await revoke(undefined, request)).status).to.equal(401);
    expect((await revoke('Bearer wrong', request)).status).to.equal(401);
    expect(lee.socket.connected, 'refused calls changed nothing').to.equal(true);
    expect((await revoke(`Bearer ${ADMIN}`, { ...request, tokenId: '' })).status).to.equal(400);
    expect((await revoke(`Bearer ${ADMIN}`, request)).status).to.equal(204);
    expect(await Promise.race([lee.disconnected, sleep(3000).then(() => 'still connected')])).to.equal('io server disconnect');
    expect(await handshakeOutcome(t.url, token)).to.equal('AUTH_REVOKED');
    expect(await handshakeOutcome(t.url, t.idp.mint({ userId: 'dr-lee', deviceId: 'lee-phone' }))).to.equal('connected');
  });
});
