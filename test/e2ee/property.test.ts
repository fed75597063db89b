import { expect } from 'chai';
import fc from 'fast-check';
import { MemoryDeviceStore, type ChatMessage, type CurbsideClient, type DecryptionError } from '@curbside/client-sdk';
import { Rooms, ServerEvent } from '@curbside/shared';
import { HubHarness, eventually, type TestHub } from '../support/hub.js';

const DEVICES = [
  { userId: 'dr-lee', deviceId: 'lee-phone' },
  { userId: 'dr-lee', deviceId: 'lee-desk' },
  { userId: 'dr-patel', deviceId: 'patel-laptop' },
  { userId: 'dr-patel', deviceId: 'patel-tablet' },
] as const;

type Action =
  | { kind: 'send'; device: number }
  | { kind: 'drop'; device: number }
  | { kind: 'duplicate'; device: number; pick: number }
  | { kind: 'reorder'; device: number }
  | { kind: 'restart'; device: number };

const device = fc.integer({ min: 0, max: DEVICES.length - 1 });
const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 6, arbitrary: device.map((d) => ({ kind: 'send' as const, device: d })) },
  { weight: 1, arbitrary: device.map((d) => ({ kind: 'drop' as const, device: d })) },
  { weight: 1, arbitrary: fc.tuple(device, fc.nat()).map(([d, pick]) => ({ kind: 'duplicate' as const, device: d, pick })) },
  { weight: 1, arbitrary: device.map((d) => ({ kind: 'reorder' as const, device: d })) },
  { weight: 1, arbitrary: device.map((d) => ({ kind: 'restart' as const, device: d })) },
);

interface Slot {
  client: CurbsideClient;
  store: MemoryDeviceStore;
  seen: ChatMessage[];
  errors: DecryptionError[];
  pending: Array<Promise<unknown>>;
}

describe('end-to-end encryption under drops, duplicates, reorders and restarts (property)', function () {
  this.timeout(120_000);
  const harness = new HubHarness();
  afterEach(() => harness.cleanup());

  it('every acked message is read exactly once on every other device, with no decryption failures', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(action, { minLength: 5, maxLength: 30 }), async (actions) => {
        const t: TestHub = await harness.start('memory');
        try {
          const slots: Slot[] = DEVICES.map((who) => {
            const store = new MemoryDeviceStore();
            return { client: t.client(who, { store }), store, seen: [], errors: [], pending: [] };
          });
          const attach = (s: Slot) => {
            s.client.on('message', (m) => s.seen.push(m));
            s.client.on('decryptionError', (e) => s.errors.push(e));
          };
          slots.forEach(attach);
          await Promise.all(slots.map((s) => s.client.connect()));
          const conv = await slots[0]!.client.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });
          const sent: Array<{ text: string; from: number; ack: Promise<unknown> }> = [];

          const pushRaw = async (d: number, pick: (n: number) => number[]) => {
            const stored = await t.storage.envelopesAfter('org-a', conv.id, 0, 1000);
            if (stored.length === 0) return;
            const who = DEVICES[d]!;
            for (const i of pick(stored.length)) {
              const e = stored[i]!;
              const { recipients, ...rest } = e;
              const mine = recipients?.find((r) => r.deviceId === who.deviceId);
              t.hub.io.to(Rooms.device('org-a', who.deviceId)).emit(ServerEvent.ENVELOPE, mine ? { ...rest, ciphertext: mine.ciphertext } : rest);
            }
          };

          for (const [i, a] of actions.entries()) {
            const slot = slots[a.device]!;
            switch (a.kind) {
              case 'send': {
                const text = `m${i} from ${DEVICES[a.device]!.deviceId}`;
                const ack = slot.client.sendText(conv.id, text);
                slot.pending.push(ack.catch(() => {}));
                sent.push({ text, from: a.device, ack });
                break;
              }
              case 'drop': {
                const sockets = [...t.hub.io.of('/').sockets.values()].filter((s) => s.data.deviceId === DEVICES[a.device]!.deviceId);
                for (const s of sockets) s.conn.close();
                break;
              }
              case 'duplicate':
                await pushRaw(a.device, (n) => [a.pick % n]);
                break;
              case 'reorder':
                await pushRaw(a.device, (n) => [n - 1, Math.max(0, n - 2), Math.max(0, n - 3)]);
                break;
              case 'restart': {
                await Promise.all(slot.pending.splice(0));
                await slot.client.close();
                slot.client = t.client(DEVICES[a.device]!, { store: slot.store });
                attach(slot);
                await slot.client.connect();
                break;
              }
            }
            if (i % 3 === 0) await new Promise((r) => setTimeout(r, 5));
          }

          const settled = await Promise.allSettled(sent.map((s) => s.ack));
          const failures = settled.flatMap((r, i) => (r.status === 'rejected' ? [`${sent[i]!.text}: ${String((r.reason as Error)?.message ?? r.reason)}`] : []));
          expect(failures.join(' | '), 'every send is eventually acked (the outbox retries across drops)').to.equal('');
          const acked = sent;
          await Promise.all(slots.map((s) => (s.client.connected ? Promise.resolve() : s.client.connect())));

          await eventually(
            () => slots.every((s, d) => s.seen.length >= acked.filter((a) => a.from !== d).length),
            'every device read every message from the others',
            20_000,
          );
          await new Promise((r) => setTimeout(r, 50));
          for (const [d, s] of slots.entries()) {
            const expected = acked.filter((a) => a.from !== d).map((a) => a.text).sort();
            expect(s.seen.map((m) => m.text).sort(), `device ${DEVICES[d]!.deviceId}`).to.deep.equal(expected);
            expect(new Set(s.seen.map((m) => m.messageId)).size, 'no duplicates shown').to.equal(s.seen.length);
            const seqs = s.seen.map((m) => m.seq);
            expect(seqs, 'in sequence order').to.deep.equal([...seqs].sort((x, y) => x - y));
            expect(s.errors.map((e) => `${e.reason}`), `no decryption failures on ${DEVICES[d]!.deviceId}`).to.deep.equal([]);
          }
        } finally {
          await harness.cleanup();
        }
      }),
      { numRuns: 12, endOnFailure: true },
    );
  });
});
