/**
 * Regression: `connect()` rejected on any `error` the client emitted before its first sync, so a
 * problem of the work a connect starts alongside (open alerts, on-call roles, keys, device lists)
 * failed a connect whose connection and sync were fine; an app that then called `connect()` again, or
 * told the clinician they were offline, did so on a working client. `connect()` now rejects only when
 * the hub refuses the handshake or the first sync fails; the others reach the app as `error` events.
 *
 * Each case has the hub refuse one request of the connect with a typed error, the first time only.
 */
import { expect } from 'chai';
import type { Socket } from 'socket.io';
import { ErrorCode } from '@curbside/shared';
import { HubHarness, eventually, watchClient, type TestHub } from '../support/hub.js';

const LEE = { userId: 'dr-lee', deviceId: 'lee-phone' };
const PATEL = { userId: 'dr-patel', deviceId: 'patel-laptop' };

/** The first `event` this device sends is answered `FORBIDDEN` instead of being handled. */
function refuseOnce(t: TestHub, deviceId: string, event: string): { refused: () => number } {
  let refused = 0;
  t.hub.io.on('connection', (socket: Socket) => {
    if (socket.data.deviceId !== deviceId) return;
    socket.use((packet, next) => {
      const ack = packet[packet.length - 1];
      if (packet[0] !== event || refused > 0 || typeof ack !== 'function') return next();
      refused++;
      (ack as (res: unknown) => void)({ ok: false, error: { code: ErrorCode.FORBIDDEN, message: `refused by the test: ${event}` } });
    });
  });
  return { refused: () => refused };
}

async function outcome(p: Promise<void>): Promise<string> {
  return p.then(
    () => 'resolved',
    (e: { code?: string }) => `rejected ${e.code}`,
  );
}

describe('regression: connect() fails for its connection and its sync, not for what it starts alongside', function () {
  this.timeout(60_000);
  const harness = new HubHarness();
  afterEach(() => harness.cleanup());

  for (const event of ['alert:list', 'keys:publish']) {
    it(`${event} refused during the connect: connect() resolves, the app hears the error, and messages flow`, async () => {
      const t = await harness.start('memory');
      const refusal = refuseOnce(t, LEE.deviceId, event);
      const lee = t.client(LEE);
      const patel = t.client(PATEL);
      const leeHeard = watchClient(lee);
      const patelHeard = watchClient(patel);
      expect(await outcome(lee.connect())).to.equal('resolved');
      expect(refusal.refused(), `${event} was refused once`).to.equal(1);
      await eventually(() => leeHeard.problems.length > 0, 'the app hears the refusal');
      expect(leeHeard.problems).to.deep.equal([`${ErrorCode.FORBIDDEN}: refused by the test: ${event}`]);
      await patel.connect();
      const conv = await patel.createConversation({ kind: 'direct', peerUserId: LEE.userId });
      await patel.sendText(conv.id, 'still works');
      // keys:publish refused once: the next connect publishes them; until then Patel cannot reach Lee's device.
      if (event === 'keys:publish') {
        lee.disconnect();
        await lee.connect();
      }
      await lee.sendText(conv.id, 'reply');
      await eventually(() => patelHeard.messages.length === 1, 'Patel reads the reply');
      expect(patelHeard.messages[0]!.text).to.equal('reply');
      expect(patelHeard.problems).to.deep.equal([]);
    });
  }

  it('the first sync refused: connect() rejects with the hub’s error', async () => {
    const t = await harness.start('memory');
    refuseOnce(t, LEE.deviceId, 'sync:fetch');
    const lee = t.client(LEE);
    const leeHeard = watchClient(lee);
    expect(await outcome(lee.connect())).to.equal(`rejected ${ErrorCode.FORBIDDEN}`);
    expect(leeHeard.problems).to.deep.equal([`${ErrorCode.FORBIDDEN}: refused by the test: sync:fetch`]);
    // Refused once only: connecting again syncs.
    lee.disconnect();
    expect(await outcome(lee.connect())).to.equal('resolved');
  });

  it('a refused handshake still rejects connect()', async () => {
    const t = await harness.start('memory');
    const lee = t.client(LEE, { token: 'not a token' });
    expect(await outcome(lee.connect())).to.equal(`rejected ${ErrorCode.AUTH_INVALID}`);
  });
});
