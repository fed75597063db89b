/**
 * Regressions (security round 2, finding 3: abuse that locks nobody out), on Redis + the Mongo-wire DB:
 * - 620 garbage handshakes from one address locked a valid user at that address out for 58 s;
 * - only sends, prekey claims and handshakes were limited: 20k unknown events went through, 3,000
 *   typing events fanned out 120,000 pushes;
 * - 500 sockets were accepted for one device;
 * - 5,000 refused events wrote 5,001 audit documents;
 * - one colleague drained all of a device's one-time prekeys;
 * - anyone could watch when any clinician was online, on which devices, through a direct conversation.
 */
import { expect } from 'chai';
import { io as rawIo } from 'socket.io-client';
import { ErrorCode, wireParser, type Conversation, type PresenceResult } from '@curbside/shared';
import { eventually, sharedBackend, type TestHub } from '../support/hub.js';
import { testDeviceKeys } from '../support/keys.js';
import { connectRaw, errorCode, handshakeOutcome, sleep, type RawClient, rawHubs, onlyRateLimits } from '../security/support.js';

describe('regression: abuse that locks nobody out (Redis + Mongo-wire DB)', function () {
  this.timeout(60_000);
  const { harness, open } = rawHubs();
  let t: TestHub;
  const limited = onlyRateLimits;
  const as = async (userId: string, deviceId: string, orgId = 'org-a') => {
    const c = await connectRaw(t.url, t.idp.mint({ orgId, userId, deviceId }));
    open.push(c);
    return c;
  };

  it('garbage handshakes from one address never lock out a valid clinician at that address', async () => {
    t = await harness.start('real', sharedBackend(), limited({ handshake: { points: 60, durationSec: 60 }, handshakeFailures: { points: 30, durationSec: 60 } }));
    const outcomes = new Map<string, number>();
    for (let i = 0; i < 40; i++) {
      const o = await handshakeOutcome(t.url, i % 2 ? `garbage-${i}` : undefined);
      outcomes.set(o, (outcomes.get(o) ?? 0) + 1);
    }
    expect(outcomes.get(ErrorCode.RATE_LIMITED), 'the address is slowed down past its ceiling').to.equal(10);
    expect(await handshakeOutcome(t.url, t.idp.mint({ userId: 'dr-lee', deviceId: 'lee-phone' })), 'a valid token from the same address').to.equal('connected');
  });

  it('behind a trusted proxy, failed handshakes count per forwarded address; from anyone else the header is ignored', async () => {
    const attempt = (url: string, forwardedFor: string, token = 'garbage') =>
      new Promise<string>((resolve) => {
        const socket = rawIo(url, { parser: wireParser, transports: ['websocket'], reconnection: false, forceNew: true, auth: { token }, extraHeaders: { 'x-forwarded-for': forwardedFor } });
        socket.once('connect', () => (socket.disconnect(), resolve('connected')));
        socket.once('connect_error', (err: Error & { data?: { code?: string } }) => (socket.disconnect(), resolve(err.data?.code ?? err.message)));
      });
    const rules = { handshakeFailures: { points: 3, durationSec: 60 } };
    t = await harness.start('real', sharedBackend(), (c) => {
      limited(rules)(c);
      c.trustProxy = 'loopback';
    });
    const one = [];
    for (let i = 0; i < 4; i++) one.push(await attempt(t.url, '203.0.113.7'));
    expect(one).to.deep.equal([ErrorCode.AUTH_INVALID, ErrorCode.AUTH_INVALID, ErrorCode.AUTH_INVALID, ErrorCode.RATE_LIMITED]);
    expect(await attempt(t.url, '203.0.113.8'), 'another client behind the same proxy').to.equal(ErrorCode.AUTH_INVALID);
    await harness.cleanup();
    // Without TRUST_PROXY the header is anyone's to write: the proxy's own address counts.
    t = await harness.start('real', sharedBackend(), limited(rules));
    const spoofed = [];
    for (let i = 0; i < 4; i++) spoofed.push(await attempt(t.url, `198.51.100.${i}`));
    expect(spoofed.at(-1)).to.equal(ErrorCode.RATE_LIMITED);
  });

  it('every event class has a budget per device, per user across devices, and unknown events stop costing past theirs', async () => {
    t = await harness.start('real', sharedBackend(), limited({ membership: { points: 2, durationSec: 60 }, unknown: { points: 5, durationSec: 60 } }));
    const phone = await as('dr-lee', 'lee-phone');
    const laptop = await as('dr-lee', 'lee-laptop');
    const tablet = await as('dr-lee', 'lee-tablet');
    const create = (c: RawClient) => c.call('conversation:create', { kind: 'group', memberUserIds: [] }).then(errorCode);
    // Device budget 2; user budget 2 × 2 = 4 across the user's devices (a refused request counts too).
    expect([await create(phone), await create(phone), await create(phone)]).to.deep.equal(['ok', 'ok', ErrorCode.RATE_LIMITED]);
    expect([await create(laptop), await create(laptop)]).to.deep.equal(['ok', ErrorCode.RATE_LIMITED]);
    expect(await create(tablet), 'the user budget is spent').to.equal(ErrorCode.RATE_LIMITED);
    expect((await t.storage.listConversationsForUser('org-a', 'dr-lee')).length).to.equal(3);
    // Another user's budget is their own.
    const patel = await as('dr-patel', 'patel-phone');
    expect(await create(patel)).to.equal('ok');

    const unknown = [];
    for (let i = 0; i < 12; i++) unknown.push(errorCode(await phone.call('no-such-event', {})));
    expect(unknown).to.deep.equal([...Array(5).fill(ErrorCode.INVALID_PAYLOAD), ...Array(7).fill(ErrorCode.RATE_LIMITED)]);
  });

  it('envelope:send has a budget per device, per user across devices and per organisation; another organisation is untouched', async () => {
    t = await harness.start('real', sharedBackend(), (c) => {
      limited({ envelopeSend: { points: 3, durationSec: 60 } })(c);
      c.security!.budgetFactors = { user: 2, org: 3 };
    });
    const phone = await as('dr-lee', 'lee-phone');
    const laptop = await as('dr-lee', 'lee-laptop');
    const tablet = await as('dr-lee', 'lee-tablet');
    const patel = await as('dr-patel', 'patel-phone');
    const kim = await as('dr-kim', 'kim-phone');
    const other = await as('dr-lee', 'lee-phone', 'org-b');
    const direct = async (c: RawClient, peerUserId: string) => {
      const conv = await c.call<Conversation>('conversation:create', { kind: 'direct', peerUserId });
      return conv.ok ? conv.data.id : '';
    };
    const withPatel = await direct(phone, 'dr-patel');
    const withKim = await direct(kim, 'dr-lee');
    const elsewhere = await direct(other, 'dr-patel');
    let n = 0;
    const send = async (c: RawClient, conversationId: string) => {
      const ack = await c.call('envelope:send', { conversationId, clientMessageId: `m${n++}`, body: new Uint8Array([1]) });
      return ack.ok ? 'ok' : `${ack.error.code}${ack.error.details?.limit ? ` ${String(ack.error.details.limit)}` : ''}`;
    };
    // Device budget 3, user budget 2 × 3 = 6 across the user's devices, organisation 3 × 3 = 9 (refused sends count too).
    const lee = [await send(phone, withPatel), await send(phone, withPatel), await send(phone, withPatel), await send(phone, withPatel)];
    expect(lee).to.deep.equal(['ok', 'ok', 'ok', `${ErrorCode.RATE_LIMITED} envelopeSend`]);
    expect([await send(laptop, withPatel), await send(laptop, withPatel)]).to.deep.equal(['ok', 'ok']);
    expect(await send(tablet, withPatel), 'the user budget is spent').to.equal(`${ErrorCode.RATE_LIMITED} envelopeSend@user`);
    expect([await send(patel, withPatel), await send(patel, withPatel)]).to.deep.equal(['ok', 'ok']);
    expect(await send(kim, withKim), 'the organisation budget is spent').to.equal(`${ErrorCode.RATE_LIMITED} envelopeSend@org`);
    expect(await send(other, elsewhere), 'another organisation has its own').to.equal('ok');
    const stored = await t.storage.envelopesAfter('org-a', withPatel, 0, 100);
    expect(stored.length, 'refused sends store nothing').to.equal(7);
  });

  it('typing: repeats are coalesced, and a flood is limited', async () => {
    t = await harness.start('real', sharedBackend(), limited({ typing: { points: 20, durationSec: 60 } }));
    const lee = await as('dr-lee', 'lee-phone');
    const patel = await as('dr-patel', 'patel-phone');
    const conv = await lee.call<Conversation>('conversation:create', { kind: 'direct', peerUserId: 'dr-patel' });
    const conversationId = conv.ok ? conv.data.id : '';
    const codes = [];
    for (let i = 0; i < 30; i++) codes.push(errorCode(await lee.call('typing', { conversationId, typing: true })));
    expect(codes.filter((c) => c === 'ok').length).to.equal(20);
    expect(codes.filter((c) => c === ErrorCode.RATE_LIMITED).length).to.equal(10);
    await sleep(200);
    expect(patel.pushes.filter((p) => p.event === 'typing').length, '20 accepted "typing" signals, one push').to.equal(1);
  });

  it('a device holds at most MAX_SOCKETS_PER_DEVICE sockets on a node', async () => {
    t = await harness.start('real', sharedBackend(), (c) => {
      limited({})(c);
      c.maxSocketsPerDevice = 3;
    });
    const token = () => t.idp.mint({ userId: 'dr-lee', deviceId: 'lee-phone' });
    for (let i = 0; i < 3; i++) open.push(await connectRaw(t.url, token()));
    expect(await handshakeOutcome(t.url, token())).to.equal(ErrorCode.RATE_LIMITED);
    expect(await handshakeOutcome(t.url, t.idp.mint({ userId: 'dr-lee', deviceId: 'lee-laptop' })), 'another device').to.equal('connected');
    open.pop()!.close();
    await eventually(async () => (await handshakeOutcome(t.url, token())) === 'connected', 'a freed slot can be used again');
  });

  it('refused events are audited once per kind and window, with a count', async () => {
    t = await harness.start('real', sharedBackend(), limited({}));
    const mallory = await as('dr-mallory', 'mal-phone');
    for (let i = 0; i < 300; i++) mallory.socket.emit('envelope:send', { conversationId: 'nope', clientMessageId: `x${i}`, body: new Uint8Array([1]) }, () => {});
    await eventually(async () => {
      t.hub.security.flushAudit();
      await t.hub.audit.flush();
      const chains = (await t.hub.audit.chains()).filter((c) => c.startsWith('org-a'));
      const entries = (await Promise.all(chains.map((c) => t.hub.audit.entries(c, -1, 10_000)))).flat().filter((e) => e.action === 'envelope:send' && e.userId === 'dr-mallory');
      // The first refusal of a window is an entry of its own; a `count` entry stands for that many more.
      return entries.reduce((n, e) => n + (e.count ?? 1), 0) === 300 && entries.length <= 3;
    }, '300 refusals in at most three audit entries, counted', 20_000);
  });

  it('one colleague cannot drain another’s one-time prekeys', async () => {
    t = await harness.start('real', sharedBackend(), limited({ keysClaimTarget: { points: 3, durationSec: 3600 } }));
    const patel = await as('dr-patel', 'patel-phone');
    const k = testDeviceKeys();
    expect(errorCode(await patel.call('keys:publish', { identityKey: k.identityKey, signedPrekey: k.signedPrekey(), oneTimePrekeys: k.oneTimePrekeys(20) }))).to.equal('ok');
    const mallory = await as('dr-mallory', 'mal-phone');
    const claims = [];
    for (let i = 0; i < 6; i++) claims.push(errorCode(await mallory.call('keys:claim', { userIds: ['dr-patel'] })));
    expect(claims).to.deep.equal(['ok', 'ok', 'ok', ErrorCode.RATE_LIMITED, ErrorCode.RATE_LIMITED, ErrorCode.RATE_LIMITED]);
    expect(await t.storage.countOneTimePrekeys('org-a', 'patel-phone')).to.equal(17);
    const lee = await as('dr-lee', 'lee-phone');
    expect(errorCode(await lee.call('keys:claim', { userIds: ['dr-patel'] })), 'another colleague').to.equal('ok');
  });

  it('presence: a direct conversation someone else opened does not show you online to them, and nobody sees your devices', async () => {
    t = await harness.start('real', sharedBackend(), limited({}));
    const lee = await as('dr-lee', 'lee-phone');
    const mallory = await as('dr-mallory', 'mal-phone');
    const probe = await mallory.call<Conversation>('conversation:create', { kind: 'direct', peerUserId: 'dr-lee' });
    const conversationId = probe.ok ? probe.data.id : '';
    const seenBy = async (c: RawClient) => {
      const res = await c.call<PresenceResult>('presence:query', { conversationId });
      return res.ok ? res.data.online : [];
    };
    expect((await seenBy(mallory)).map((o) => o.userId), 'Mallory polls: Lee does not show').to.deep.equal(['dr-mallory']);
    // Lee sees that Mallory (who opened it) is online, but not on which devices; his own devices, yes.
    const leeSees = await seenBy(lee);
    expect(leeSees).to.deep.include({ userId: 'dr-mallory', deviceIds: [] });
    expect(leeSees).to.deep.include({ userId: 'dr-lee', deviceIds: ['lee-phone'] });
    // Once Lee answers, he has accepted the conversation: Mallory sees that he is online (not where).
    expect(errorCode(await lee.call('envelope:send', { conversationId, clientMessageId: 'reply', body: new Uint8Array([1]) }))).to.equal('ok');
    await eventually(async () => (await seenBy(mallory)).some((o) => o.userId === 'dr-lee'), 'an answer accepts the conversation');
    expect(await seenBy(mallory)).to.deep.include({ userId: 'dr-lee', deviceIds: [] });
  });
});

describe('regression: consent — nobody can be buried in groups (memory adapters and Redis + Mongo-wire DB)', function () {
  this.timeout(60_000);
  const { harness, open } = rawHubs();

  it('how often others can add someone is limited; adding yourself to your own groups is not', async () => {
    const t = await harness.start('real', sharedBackend(), onlyRateLimits({ addedToConversations: { points: 3, durationSec: 3600 } }));
    const mallory = await connectRaw(t.url, t.idp.mint({ userId: 'dr-mallory', deviceId: 'm1' }));
    const lee = await connectRaw(t.url, t.idp.mint({ userId: 'dr-lee', deviceId: 'l1' }));
    open.push(mallory, lee);
    const codes = [];
    for (let i = 0; i < 5; i++) codes.push(errorCode(await mallory.call('conversation:create', { kind: 'group', memberUserIds: ['dr-lee'] })));
    expect(codes).to.deep.equal(['ok', 'ok', 'ok', ErrorCode.RATE_LIMITED, ErrorCode.RATE_LIMITED]);
    expect((await t.storage.listConversationsForUser('org-a', 'dr-lee')).length).to.equal(3);
    for (let i = 0; i < 5; i++) expect(errorCode(await lee.call('conversation:create', { kind: 'group', memberUserIds: [] }))).to.equal('ok');
  });

  it('conversation:list answers a page at a time, each well under a frame, and the SDK gathers every page', async () => {
    const t = await harness.start('memory', sharedBackend(), onlyRateLimits());
    // 12 huge groups (999 members with long ids) and 230 small ones, all with dr-lee.
    const many = Array.from({ length: 998 }, (_, i) => `member-${i}-${'x'.repeat(100)}`);
    for (let i = 0; i < 12; i++) await t.storage.createConversation({ orgId: 'org-a', kind: 'group', createdBy: 'dr-lee', memberUserIds: many, now: i });
    for (let i = 0; i < 230; i++) await t.storage.createConversation({ orgId: 'org-a', kind: 'group', createdBy: 'dr-lee', memberUserIds: [], now: 100 + i });
    const lee = await connectRaw(t.url, t.idp.mint({ userId: 'dr-lee', deviceId: 'l1' }));
    open.push(lee);
    const seen: string[] = [];
    let after: string | undefined;
    let pages = 0;
    do {
      const res = await lee.call<{ conversations: Conversation[]; next?: string }>('conversation:list', after ? { after } : {});
      expect(res.ok, JSON.stringify(res).slice(0, 200)).to.equal(true);
      const page = res.ok ? res.data : { conversations: [] };
      expect(JSON.stringify(page).length, 'a page stays near 1 MiB').to.be.lessThan(1.5 * 1024 * 1024);
      expect(page.conversations.length).to.be.at.most(100);
      seen.push(...page.conversations.map((c) => c.id));
      after = page.next;
      pages++;
    } while (after);
    expect(seen.length).to.equal(242);
    expect(new Set(seen).size, 'no conversation twice').to.equal(242);
    expect(pages).to.be.greaterThan(3);
    expect(errorCode(await lee.call('conversation:list', { after: 'not-a-cursor' }))).to.equal(ErrorCode.INVALID_PAYLOAD);
    const sdk = t.client({ userId: 'dr-lee', deviceId: 'l2' }, { e2ee: false });
    await sdk.connect();
    expect((await sdk.listConversations()).length).to.equal(242);
  });

  for (const backend of ['memory', 'real'] as const) {
    it(`anyone can leave any group, and the others hear of it (${backend})`, async () => {
      const t = await harness.start(backend, sharedBackend(), onlyRateLimits());
      const as = async (userId: string) => {
        const c = await connectRaw(t.url, t.idp.mint({ userId, deviceId: `${userId}-1` }));
        open.push(c);
        return c;
      };
      const [mallory, lee, kim] = [await as('dr-mallory'), await as('dr-lee'), await as('dr-kim')];
      const made = await mallory.call<Conversation>('conversation:create', { kind: 'group', memberUserIds: ['dr-lee', 'dr-kim'] });
      const conversationId = made.ok ? made.data.id : '';
      const left = await lee.call<Conversation>('conversation:leave', { conversationId });
      expect(left.ok && left.data.memberUserIds).to.deep.equal(['dr-mallory', 'dr-kim']);
      for (const c of [mallory, kim, lee]) {
        await eventually(() => c.pushes.some((p) => p.event === 'conversation' && !(p.payload as Conversation).memberUserIds.includes('dr-lee')), 'the leave is pushed');
      }
      expect(errorCode(await lee.call('envelope:send', { conversationId, clientMessageId: 'after', body: new Uint8Array([1]) }))).to.equal(ErrorCode.FORBIDDEN);
      expect(errorCode(await lee.call('conversation:leave', { conversationId })), 'twice').to.equal(ErrorCode.FORBIDDEN);
      expect((await t.storage.listConversationsForUser('org-a', 'dr-lee')).map((c) => c.id)).to.not.include(conversationId);
      const direct = await kim.call<Conversation>('conversation:create', { kind: 'direct', peerUserId: 'dr-lee' });
      expect(errorCode(await kim.call('conversation:leave', { conversationId: direct.ok ? direct.data.id : '' })), 'a direct conversation').to.equal(ErrorCode.INVALID_PAYLOAD);
    });
  }
});
