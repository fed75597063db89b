import { expect } from 'chai';
import type { HubConfig, Storage } from '@curbside/server';
import { ClientEvent, ErrorCode, type WireError } from '@curbside/shared';
import { SHED_RETRY_AFTER_MS } from '../../server/src/realtime/admission.js';
import { HubHarness, bytes, eventually } from '../support/hub.js';
import { connectRaw } from '../security/support.js';

/** An error shaped like the MongoDB driver's "no server reachable" (the hub matches it by name). */
function unreachable(): Error {
  const e = new Error('connection 24 to 127.0.0.1:27017 closed');
  e.name = 'MongoServerSelectionError';
  return e;
}

/** Wrap storage so a test can make the database unreachable, or hold envelope writes. */
function flakyStorage(inner: Storage) {
  const knobs = {
    down: false,
    /** While set, appendEnvelope waits for it. */
    hold: undefined as Promise<void> | undefined,
    /** How many upcoming conversation list reads fail as unreachable. */
    failConversationReads: 0,
  };
  const storage: Storage = Object.create(inner) as Storage;
  Object.assign(storage, {
    init: () => inner.init(),
    close: () => inner.close(),
    ping: async () => {
      if (knobs.down) throw unreachable();
      return inner.ping();
    },
    listConversationsForUser: async (...args: Parameters<Storage['listConversationsForUser']>) => {
      if (knobs.failConversationReads > 0) {
        knobs.failConversationReads--;
        throw unreachable();
      }
      return inner.listConversationsForUser(...args);
    },
    appendEnvelope: async (input: Parameters<Storage['appendEnvelope']>[0]) => {
      if (knobs.down) throw unreachable();
      if (knobs.hold) await knobs.hold;
      return inner.appendEnvelope(input);
    },
  });
  return { storage, knobs };
}

describe('hub node health: draining, unreachable storage, the watchdog', function () {
  const harness = new HubHarness();
  afterEach(() => harness.cleanup());

  /** A memory hub over flaky storage; `fatal` collects what the watchdog reports. */
  async function startFlaky(tweak: (c: HubConfig) => void = () => {}) {
    let knobs!: ReturnType<typeof flakyStorage>['knobs'];
    const fatal: string[] = [];
    const t = await harness.start(
      'memory',
      undefined,
      tweak,
      (s) => {
        const f = flakyStorage(s);
        knobs = f.knobs;
        return f.storage;
      },
      (reason) => fatal.push(reason),
    );
    return { t, knobs, fatal };
  }

  it('a draining node closes idle connections at once and a busy one right after its answer', async () => {
    const { t, knobs } = await startFlaky((c) => (c.shutdownGraceMs = 30_000));
    const busy = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' }, { e2ee: false });
    const idle = t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' }, { e2ee: false });
    const reasons = { busy: [] as string[], idle: [] as string[] };
    busy.on('disconnected', (d) => reasons.busy.push(d.reason));
    idle.on('disconnected', (d) => reasons.idle.push(d.reason));
    await Promise.all([busy.connect(), idle.connect()]);
    const conv = await busy.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });

    let release!: () => void;
    knobs.hold = new Promise<void>((r) => (release = r));
    const send = busy.sendEnvelope(conv.id, { body: bytes('in flight at shutdown') });
    await new Promise((r) => setTimeout(r, 100)); // the send reaches the held write
    const closing = t.hub.close();

    await eventually(() => reasons.idle.includes('server-shutdown'), 'the idle client is told to move at once');
    expect(reasons.busy, 'the busy client stays until its write is answered').to.deep.equal([]);
    release();
    const ack = await send;
    expect(ack.seq).to.equal(1);
    await eventually(() => reasons.busy.includes('server-shutdown'), 'the busy client is closed after its answer');
    await closing;
    expect(await t.storage.envelopesAfter('org-a', conv.id, 0, 10)).to.have.length(1);
  });

  it('an overloaded node refuses requests past MAX_IN_FLIGHT at once with a retryable UNAVAILABLE, and the SDK sends them after the hint', async () => {
    const { t, knobs } = await startFlaky((c) => (c.maxInFlight = 2));
    const lee = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' }, { e2ee: false });
    await lee.connect();
    const convs = [
      await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' }),
      await lee.createConversation({ kind: 'direct', peerUserId: 'dr-okafor' }),
      await lee.createConversation({ kind: 'direct', peerUserId: 'dr-ruiz' }),
    ];
    const raw = await connectRaw(t.url, t.idp.mint({ userId: 'dr-patel', deviceId: 'patel-laptop' }));
    try {
      // The database stalls: two sends hold the node's two places, the third is refused and waits in the outbox.
      let release!: () => void;
      knobs.hold = new Promise<void>((r) => (release = r));
      const sends = convs.map((c, i) => lee.sendEnvelope(c.id, { body: bytes(`held ${i}`) }));
      await eventually(() => t.logs.text().includes('overloaded: refusing new requests'), 'the node says it is shedding load');
      const refused = await raw.call(ClientEvent.CONVERSATION_LIST, {});
      expect(refused.ok).to.equal(false);
      const error = (refused as { error: WireError }).error;
      expect(error.code).to.equal(ErrorCode.UNAVAILABLE);
      expect(error.details?.['overloaded']).to.equal(true);
      expect(error.details?.['retryAfterMs']).to.be.within(SHED_RETRY_AFTER_MS, 2 * SHED_RETRY_AFTER_MS);

      // The database answers: the two held sends are acked, the refused one goes after its hint; each is stored once.
      release();
      const acks = await Promise.all(sends);
      expect(acks.map((a) => a.seq)).to.deep.equal([1, 1, 1]);
      for (const c of convs) expect((await t.storage.envelopesAfter('org-a', c.id, 0, 10)).length, c.id).to.equal(1);
      // Every place is free again.
      const answered = await raw.call(ClientEvent.CONVERSATION_LIST, {});
      expect(answered.ok, JSON.stringify(answered)).to.equal(true);
      expect(t.logs.text()).not.to.include('handler failed');
    } finally {
      raw.close();
    }
  });

  it('an unreachable database is a retryable UNAVAILABLE, and repeatable requests are retried', async () => {
    const { t, knobs } = await startFlaky();
    const lee = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' }, { e2ee: false });
    await lee.connect();
    const conv = await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });

    // Two failed reads, then the database answers: the SDK asks again and the caller sees success.
    knobs.failConversationReads = 2;
    const list = await lee.listConversations();
    expect(list.map((c) => c.id)).to.deep.equal([conv.id]);
    expect(knobs.failConversationReads).to.equal(0);
    expect(t.logs.text()).to.include('storage unreachable');
    expect(t.logs.text()).not.to.include('handler failed');

    // A send is not a repeatable request, but it stays in the outbox and goes out once storage is back.
    knobs.down = true;
    const send = lee.sendEnvelope(conv.id, { body: bytes('while the database is down') });
    await eventually(() => t.logs.text().includes('"event":"envelope:send"'), 'the send reached the hub');
    knobs.down = false;
    const ack = await send;
    expect(ack.seq).to.equal(1);
    expect(await t.storage.envelopesAfter('org-a', conv.id, 0, 10)).to.have.length(1);
  });

  it('a node whose database stays unreachable gives up: clients are moved off, then onFatal', async () => {
    const { t, knobs, fatal } = await startFlaky((c) => (c.storageWatchdogMs = 600));
    const lee = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' }, { e2ee: false });
    const reasons: string[] = [];
    lee.on('disconnected', (d) => reasons.push(d.reason));
    await lee.connect();

    // Healthy for several watchdog periods: nothing happens.
    await new Promise((r) => setTimeout(r, 1000));
    expect(fatal).to.deep.equal([]);
    expect(lee.connected).to.equal(true);

    knobs.down = true;
    await eventually(() => fatal.length === 1, 'the watchdog gives up', 10_000);
    expect(fatal[0]).to.match(/^storage unreachable for \d+ ms$/);
    expect(reasons).to.include('server-shutdown');
    expect(t.logs.text()).to.include('storage unreachable for too long');
    const ready = await fetch(`${t.url}/readyz`).catch(() => undefined);
    expect(ready?.ok ?? false, 'the closed node is not ready').to.equal(false);
  });

  it('the watchdog also gives up when pings answer but requests keep failing as unreachable', async () => {
    const { t, knobs, fatal } = await startFlaky((c) => (c.storageWatchdogMs = 2000));
    const lee = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' }, { e2ee: false });
    await lee.connect();
    // Every conversation read fails as unreachable while the pings answer; the app keeps asking.
    knobs.failConversationReads = Number.POSITIVE_INFINITY;
    const asking = setInterval(() => void lee.listConversations().catch(() => {}), 100);
    try {
      await eventually(() => fatal.length === 1, 'the watchdog gives up although pings answer', 10_000);
    } finally {
      clearInterval(asking);
    }
    expect(t.logs.text()).to.include('storage unreachable');
    expect(t.logs.text()).not.to.include('storage ping failed');
  });
});
