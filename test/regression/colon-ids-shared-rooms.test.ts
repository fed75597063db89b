/**
 * Regression (security round 2, finding 1): rooms were built as `u:<org>:<user>` and `d:<org>:<device>`
 * while ids may contain `:`. User `icu:dr-lee` of org `hosp` shared a room with `dr-lee` of org
 * `hosp:icu`, received that org's team title and member list, typing notices, envelopes and the
 * ciphertext meant for its device `laptop`; revoking a device in one org disconnected the same-named
 * device in the other. Reproduced in production mode: two hub nodes on real Redis (socket.io Redis
 * adapter) and the Mongo-wire DB, each org's clinicians spread over both nodes.
 */
import { expect } from 'chai';
import type { Conversation } from '@curbside/shared';
import { sharedBackend, eventually } from '../support/hub.js';
import { testDeviceKeys } from '../support/keys.js';
import { connectRaw, sleep, rawHubs } from '../security/support.js';

describe('regression: ids containing ":" never let one organisation receive another’s traffic (two nodes, Redis, Mongo-wire DB)', function () {
  this.timeout(60_000);
  const { harness, open } = rawHubs();

  it('team title, members, typing, envelopes and revocation stay in their own organisation', async () => {
    const shared = sharedBackend();
    const [node1, node2] = [await harness.start('real', shared), await harness.start('real', shared)];
    const as = async (url: string, orgId: string, userId: string, deviceId: string) => {
      const c = await connectRaw(url, shared.idp.mint({ orgId, userId, deviceId }));
      open.push(c);
      return c;
    };
    const ok = <T>(ack: { ok: boolean; data?: T }): T => {
      expect(ack.ok, JSON.stringify(ack)).to.equal(true);
      return ack.data as T;
    };

    // Org `hosp:icu`: dr-kim writes to dr-lee (device `laptop`). Org `hosp`: `icu:dr-lee` with devices
    // `icu:laptop` and `icu:phone`: under the old room names, exactly the other org's user and device.
    const kim = await as(node1.url, 'hosp:icu', 'dr-kim', 'kim-phone');
    const lee = await as(node2.url, 'hosp:icu', 'dr-lee', 'laptop');
    const spy = await as(node1.url, 'hosp', 'icu:dr-lee', 'icu:laptop');
    const spyPhone = await as(node2.url, 'hosp', 'icu:dr-lee', 'icu:phone');
    for (const c of [kim, lee, spy, spyPhone]) {
      const keys = testDeviceKeys();
      ok(await c.call('keys:publish', { identityKey: keys.identityKey, signedPrekey: keys.signedPrekey(), oneTimePrekeys: keys.oneTimePrekeys(2) }));
    }

    const team = ok(await kim.call<Conversation>('conversation:create', { kind: 'group', memberUserIds: ['dr-lee'] }));
    await eventually(() => lee.pushes.some((p) => p.event === 'conversation' && (p.payload as Conversation).id === team.id), 'dr-lee hears of the team');

    ok(await kim.call('typing', { conversationId: team.id, typing: true }));
    await eventually(() => lee.pushes.some((p) => p.event === 'typing'), 'dr-lee sees the typing notice');

    const direct = ok(await kim.call<Conversation>('conversation:create', { kind: 'direct', peerUserId: 'dr-lee' }));
    ok(
      await kim.call('envelope:send', {
        conversationId: direct.id,
        clientMessageId: 'm1',
        recipients: [
          { deviceId: 'laptop', ciphertext: new Uint8Array([1, 1, 1]) },
        ],
      }),
    );
    ok(await kim.call('envelope:send', { conversationId: team.id, clientMessageId: 'm2', body: new Uint8Array([2, 2, 2]) }));
    await eventually(() => lee.pushes.filter((p) => p.event === 'envelope').length === 2, 'dr-lee receives both envelopes');

    // Revoking `icu:laptop` in `hosp` (from its sibling) must not touch `laptop` in `hosp:icu`.
    ok(await spyPhone.call('device:revoke', { deviceId: 'icu:laptop' }));
    await spy.disconnected;
    await sleep(300); // the other org's socket would have been dropped by now, on either node
    expect(lee.socket.connected, 'the other organisation’s device stays connected').to.equal(true);

    for (const c of [spy, spyPhone]) {
      const leaked = c.pushes.filter((p) => ['conversation', 'typing', 'envelope'].includes(p.event));
      expect(leaked, `pushes to hosp/icu:dr-lee: ${JSON.stringify(leaked.map((p) => p.event))}`).to.deep.equal([]);
    }
    // The colliding names really were the ones that met before: the same strings with ':' joins.
    expect(['u', 'hosp', 'icu:dr-lee'].join(':')).to.equal(['u', 'hosp:icu', 'dr-lee'].join(':'));
    expect(['d', 'hosp', 'icu:laptop'].join(':')).to.equal(['d', 'hosp:icu', 'laptop'].join(':'));
  });
});
