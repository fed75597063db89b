/**
 * Long file: one checker program whose invariants are proved together at the end of a run.
 *
 * The "nothing lost" invariant checker: end-to-end-encrypted SDK clients spread over the cluster's
 * hubs send continuously (1:1 and in a care team; every message shown also sends delivered receipts) while faults happen; at the end it proves, per
 * recipient device:
 *
 * - lost: every ACKED message is shown on every device registered when it was sent (all member
 *   devices but the sender's; every device registers before the first send);
 * - gaps: of the lost ones, those a device skipped over (it showed a later seq of that conversation);
 * - inversions: per conversation, the seqs a device shows strictly increase;
 * - duplicates: no device shows a message id twice, and no message is stored twice (one text under
 *   two message ids: a retry stored anew);
 * - decryption failures: none.
 *
 * Two ways to reach a node, half the devices each:
 * - `direct`: the client is given one hub's URL (the SDK can take a list and fail over itself:
 *   test/faults/sends-survive-a-hub-kill.test.ts), so when that hub dies the
 *   checker `close()`s the client (its unacked sends are rejected: "abandoned", never re-sent, since
 *   `sendText` takes no client message id) and makes a new `CurbsideClient` on a surviving hub with the
 *   SAME device store.
 * - `balancer`: the client connects through a TCP balancer (balancer.ts); its own reconnects land on
 *   a surviving hub and its outbox retries unacked sends with the same client message id.
 *
 * Deliveries are checked twice: after the run settles (live delivery and the SDK's own resyncs), and
 * again after every client was asked to resync (`connect()` on a connected client). A message that
 * shows up only in the second round was durable but not delivered by itself ("late").
 */
import mongoose from 'mongoose';
import { CurbsideClient, MemoryDeviceStore, type ChatMessage, type DecryptionError, type SendResult } from '@curbside/client-sdk';
import { withTimeout as sharedWithTimeout } from '@curbside/shared';
import type { FaultCluster } from './cluster.js';
import type { Balancer } from './balancer.js';
import { sleep } from './cluster.js';

export interface DeviceSpec {
  userId: string;
  deviceId: string;
  via: 'direct' | 'balancer';
}

/** 3 clinicians × 2 devices; phones through the balancer, desktops straight to a node. */
export const DEFAULT_DEVICES: DeviceSpec[] = ['dr-ames', 'rn-bose', 'dr-cruz'].flatMap((userId) => [
  { userId, deviceId: `${userId}-phone`, via: 'balancer' as const },
  { userId, deviceId: `${userId}-desk`, via: 'direct' as const },
]);

export interface CheckerOptions {
  cluster: FaultCluster;
  balancer: Balancer;
  devices?: DeviceSpec[];
  /** Pause between one device's sends (it has one send in flight at a time). @default [800, 2500] */
  sendPauseMs?: [number, number];
  random?: () => number;
  log?: (line: string) => void;
  /** SDK request timeout. @default 10000 */
  requestTimeoutMs?: number;
}

interface Seen {
  messageId: string;
  seq: number;
  conversationId: string;
  text: string;
  phase: Phase;
}

type Phase = 'run' | 'settle' | 'resync';

interface Slot {
  spec: DeviceSpec;
  store: MemoryDeviceStore;
  client: CurbsideClient;
  /** direct: the hub index the current client is connected to. */
  node: number;
  seen: Seen[];
  decryptErrors: Array<{ conversationId: string; seq: number; reason: string }>;
  unavailable: number;
  inflight: Promise<void> | undefined;
  switching: Promise<void> | undefined;
  /** direct: move to this node before the next send (rebalancing). */
  moveTo: number | undefined;
  clients: number;
  handovers: number;
  gaveUp: Array<{ reason: string; at: number }>;
  appReconnects: number;
  errors: Map<string, number>;
  sent: number;
}

interface Sent {
  token: string;
  conversationId: string;
  from: string;
  /** `queued`: the promise rejected with NOT_CONNECTED `queued: true` (client closed): the send stays in the persisted outbox. */
  status: 'pending' | 'acked' | 'queued' | 'failed';
  messageId?: string;
  seq?: number;
  duplicateAck?: boolean;
  error?: string;
  startedAt: number;
  settledAt?: number;
}

export interface FaultReport {
  ok: boolean;
  /** Each invariant that failed, in words. */
  failures: string[];
  durationMs: number;
  faultsInjected: number;
  faultsByKind: Record<string, number>;
  messages: {
    /** sendText calls. */
    attempted: number;
    /** Text messages the hub acked (to any client of the sending device), per the database. */
    acked: number;
    /** sendText promises that resolved with an ack. */
    ackedToApp: number;
    /** Rejected as `queued` when their client was closed, then acked from the persisted outbox by the next client. */
    queuedThenAcked: number;
    queuedNeverAcked: number;
    /** Rejected for good (not queued). */
    failed: number;
    failedByError: Record<string, number>;
    /** Failed, yet stored and shown somewhere. */
    failedButStored: number;
    /** sendText promises still open at the end. */
    neverSettled: number;
    /** Entries left in the devices' persisted outboxes at the end. */
    stillQueuedAtEnd: number;
    /** Text messages in the database that no client saw acked. */
    storedUnacked: number;
  };
  deliveries: { expected: number; shown: number; shownOnlyAfterForcedResync: number };
  lost: number;
  /** Acks for messages that are not in the database. */
  ackedNotStored: number;
  gaps: number;
  inversions: number;
  duplicates: { shownTwice: number; storedTwice: number };
  ackMismatches: number;
  decryptFailures: number;
  decryptFailuresByReason: Record<string, number>;
  unavailable: number;
  /** Deliveries missing of messages that were stored but never acked. */
  storedUnackedMissing: number;
  storage: { conversations: number; envelopes: number; seqHoles: number; duplicateSeqs: number; lastSeqBehind: number } | { error: string };
  clients: {
    devices: number;
    handovers: number;
    rebalanceMoves: number;
    /** The SDK stopped reconnecting by itself (disconnected with willReconnect false) though the app did not close it. */
    sdkGaveUp: number;
    sdkGaveUpReasons: Record<string, number>;
    /** connect() calls the app had to make because the SDK gave up. */
    appReconnects: number;
    errorEvents: Record<string, number>;
    notConnectedAtEnd: number;
  };
  nodes: { unexpectedExits: number; restarts: number; watchdogExits: number };
  samples: { lost: string[]; gaps: string[]; inversions: string[]; duplicates: string[]; decrypt: string[]; other: string[] };
}

export class InvariantChecker {
  private readonly cluster: FaultCluster;
  private readonly balancer: Balancer;
  private readonly specs: DeviceSpec[];
  private readonly slots: Slot[] = [];
  private readonly sent: Sent[] = [];
  /** messageId → ack, from the clients' `sent` events. */
  private readonly acks = new Map<string, { conversationId: string; seq: number; from: string }>();
  private readonly random: () => number;
  private readonly log: (line: string) => void;
  private readonly pause: [number, number];
  private readonly requestTimeoutMs: number;
  private phase: Phase = 'run';
  private sending = false;
  private loops: Array<Promise<void>> = [];
  private readonly convMembers = new Map<string, string[]>();
  private readonly userConvs = new Map<string, string[]>();
  private rebalanceMoves = 0;
  private notConnectedAtEnd = 0;
  private readonly stored: StoredIndex;
  private startedAt = 0;
  private closing = false;

  constructor(options: CheckerOptions) {
    this.cluster = options.cluster;
    this.balancer = options.balancer;
    this.specs = options.devices ?? DEFAULT_DEVICES;
    this.random = options.random ?? Math.random;
    this.log = options.log ?? (() => {});
    this.pause = options.sendPauseMs ?? [800, 2500];
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.onNodeDown = this.onNodeDown.bind(this);
    this.stored = new StoredIndex(this.cluster);
  }

  /** Connect every device, create the conversations (three 1:1, one care team of everyone), start no sends yet. */
  /**
   * Each clinician's first device signed their device list; the others wait to be linked. Link them
   * from a linked device with the code they show, as the clinician would.
   */
  private async linkSiblings(): Promise<void> {
    for (const slot of this.slots.filter((s) => s.client.devices.linkState === 'pending')) {
      const linked = this.slots.find((s) => s.spec.userId === slot.spec.userId && s.client.devices.linkState === 'linked');
      if (!linked) throw new Error(`no linked device of ${slot.spec.userId} to link ${slot.spec.deviceId} from`);
      await withTimeout(linked.client.devices.link(await slot.client.devices.linkCode()), 30_000, `link ${slot.spec.deviceId}`);
      await eventually(() => slot.client.devices.linkState === 'linked', `${slot.spec.deviceId} linked`, 30_000);
    }
  }

  async setup(): Promise<void> {
    this.startedAt = Date.now();
    const up = this.cluster.upNodes();
    let directIdx = 0;
    for (const spec of this.specs) {
      const node = spec.via === 'direct' ? up[directIdx++ % up.length]!.index : -1;
      const slot: Slot = {
        spec,
        store: new MemoryDeviceStore(),
        client: undefined as unknown as CurbsideClient,
        node,
        seen: [],
        decryptErrors: [],
        unavailable: 0,
        inflight: undefined,
        switching: undefined,
        moveTo: undefined,
        clients: 0,
        handovers: 0,
        gaveUp: [],
        appReconnects: 0,
        errors: new Map(),
        sent: 0,
      };
      slot.client = this.makeClient(slot);
      this.slots.push(slot);
    }
    this.cluster.on('node-down', this.onNodeDown);
    await Promise.all(this.slots.map((s) => withTimeout(s.client.connect(), 60_000, `${s.spec.deviceId} connect`)));
    await this.linkSiblings();

    const users = [...new Set(this.specs.map((s) => s.userId))];
    const first = (userId: string) => this.slots.find((s) => s.spec.userId === userId && s.client.devices.linkState === 'linked')!;
    const pairs: Array<[string, string]> = [];
    for (let i = 0; i + 1 < users.length; i++) pairs.push([users[i]!, users[i + 1]!]);
    for (const [a, b] of pairs) {
      const conv = await first(a).client.createConversation({ kind: 'direct', peerUserId: b });
      this.addConv(conv.id, [a, b]);
    }
    if (users.length >= 3) {
      const { teamId } = await first(users[0]!).client.teams.create(
        'Ward 4B',
        users.slice(1).map((userId) => ({ userId })),
      );
      this.addConv(teamId, users);
      // Every device must have verified the team log before it can send to the team.
      await eventually(
        async () => (await Promise.all(this.slots.map((s) => s.client.teams.state(teamId)))).every((t) => t !== undefined),
        'every device knows the care team',
        60_000,
      );
    }
    this.log(`checker: ${this.slots.length} devices, ${this.convMembers.size} conversations`);
  }

  /** Every device starts its send loop. */
  startSending(): void {
    this.sending = true;
    this.loops = this.slots.map((s) => this.sendLoop(s));
  }

  /** Move direct clients from crowded nodes to ones that are up and emptier (between their sends). */
  rebalanceDirect(): void {
    const up = this.cluster.upNodes().map((n) => n.index);
    if (up.length === 0) return;
    const direct = this.slots.filter((s) => s.spec.via === 'direct');
    const share = Math.ceil(direct.length / up.length);
    const count = new Map(up.map((i) => [i, 0]));
    for (const s of direct) count.set(s.moveTo ?? s.node, (count.get(s.moveTo ?? s.node) ?? 0) + 1);
    for (const s of direct) {
      const at = s.moveTo ?? s.node;
      if ((count.get(at) ?? 0) <= share && up.includes(at)) continue;
      const target = up.find((i) => (count.get(i) ?? 0) < share);
      if (target === undefined) break;
      count.set(at, (count.get(at) ?? 0) - 1);
      count.set(target, (count.get(target) ?? 0) + 1);
      s.moveTo = target;
    }
  }

  /** Whether every device is connected (after faults heal). */
  allConnected(): boolean {
    return this.slots.every((s) => !s.switching && s.client.connected);
  }

  /** Where the devices are: `direct` per node, balancer connections per node. */
  placement(): string {
    const direct = this.cluster.nodes.map((n) => this.slots.filter((s) => s.spec.via === 'direct' && s.node === n.index).length);
    return `direct ${direct.join('/')}, balancer ${this.balancer.load().join('/')}`;
  }

  ackedCount(): number {
    return this.sent.filter((s) => s.status === 'acked').length;
  }

  /** Stop sending, let everything settle, force a resync, and compute the report. */
  async finish(meta: { faultsInjected: number; faultsByKind: Record<string, number> }): Promise<FaultReport> {
    this.sending = false;
    this.log('checker: stopping sends');
    await withTimeout(Promise.allSettled(this.loops), 90_000, 'send loops to finish').catch((e: unknown) => {
      this.log(`checker: ${(e as Error).message}`);
      for (const r of this.sent.filter((x) => x.status === 'pending')) {
        const slot = this.slots.find((s) => s.spec.deviceId === r.from)!;
        this.log(`checker:   pending ${r.token} for ${Math.round((Date.now() - r.startedAt) / 1000)} s; ${slot.spec.via}, client #${slot.clients}, connected ${slot.client.connected}, ${slot.client.pendingSends} in its outbox`);
      }
    });
    await eventually(() => this.allConnected(), 'every device reconnected', 60_000).catch(() => this.log('checker: not every device reconnected'));
    this.notConnectedAtEnd = this.slots.filter((s) => !s.client.connected).length;
    this.phase = 'settle';
    // Sends still in a persisted outbox go out (and are acked) before the check.
    await eventually(async () => (await this.queuedCount()) === 0, 'persisted outboxes empty', 30_000).catch(() => {});
    await eventually(async () => (await this.missing()) === 0, 'every acked message shown everywhere', 20_000, 500).catch(async () =>
      this.log(`checker: ${await this.missing()} deliveries missing after settling; forcing a resync`),
    );
    this.phase = 'resync';
    await Promise.allSettled(
      this.slots.map((s) => withTimeout(s.client.connect(), 30_000, `${s.spec.deviceId} resync`).catch((e: unknown) => this.log(`checker: ${(e as Error).message}`))),
    );
    await eventually(async () => (await this.missing()) === 0, 'every acked message shown after the resync', 10_000, 500).catch(() => {});
    await sleep(500); // anything still arriving (a duplicate would show up here)
    const report = await this.report(meta);
    await this.close();
    return report;
  }

  async close(): Promise<void> {
    this.closing = true;
    this.sending = false;
    this.cluster.off('node-down', this.onNodeDown);
    await Promise.allSettled(this.slots.map((s) => s.client.close()));
    await this.stored.close();
  }

  private async queuedCount(): Promise<number> {
    let n = 0;
    for (const s of this.slots) n += (await s.store.list('outbox')).length;
    return n;
  }

  // --- clients --------------------------------------------------------------------------------

  private makeClient(slot: Slot): CurbsideClient {
    const url = slot.spec.via === 'balancer' ? this.balancer.url : this.cluster.nodes[slot.node]!.url;
    const client = new CurbsideClient({
      url,
      token: () => this.cluster.mint({ userId: slot.spec.userId, deviceId: slot.spec.deviceId }),
      store: slot.store,
      transports: ['websocket'],
      requestTimeoutMs: this.requestTimeoutMs,
      reconnectDelayMs: 200,
      reconnectDelayMaxMs: 2000,
    });
    slot.clients += 1;
    // Messages from any of the slot's clients count: an old client still drains while it closes.
    client.on('message', (m: ChatMessage) => slot.seen.push({ messageId: m.messageId, seq: m.seq, conversationId: m.conversationId, text: m.text, phase: this.phase }));
    client.on('decryptionError', (e: DecryptionError) => slot.decryptErrors.push({ conversationId: e.conversationId, seq: e.seq, reason: e.reason }));
    client.on('unavailable', () => (slot.unavailable += 1));
    // Every ack, also of sends restored from the persisted outbox by a later client (and of receipts).
    client.on('sent', ({ result }) => this.acks.set(result.messageId, { conversationId: result.conversationId, seq: result.seq, from: slot.spec.deviceId }));
    client.on('error', (e) => slot.errors.set(e.code, (slot.errors.get(e.code) ?? 0) + 1));
    client.on('disconnected', (info) => {
      if (slot.client !== client || this.closing || info.reason === 'client') return;
      if (slot.spec.via === 'direct' && !this.cluster.isUp(slot.node)) {
        void this.handover(slot);
        return;
      }
      if (!info.willReconnect) {
        // Not papered over: counted in the report. The app reconnects, as a real one would have to.
        slot.gaveUp.push({ reason: info.reason, at: Date.now() });
        this.log(`checker: ${slot.spec.deviceId} SDK gave up reconnecting (${info.reason}); app calls connect() again`);
        void this.appReconnect(slot, client);
      }
    });
    return client;
  }

  private async appReconnect(slot: Slot, client: CurbsideClient): Promise<void> {
    for (let attempt = 1; attempt <= 60 && !this.closing && slot.client === client && !client.connected; attempt++) {
      await sleep(1000);
      if (slot.spec.via === 'direct' && !this.cluster.isUp(slot.node)) return void this.handover(slot);
      slot.appReconnects += 1;
      try {
        await withTimeout(client.connect(), 30_000, 'connect');
        return;
      } catch {
        // try again
      }
    }
  }

  private onNodeDown(index: number): void {
    for (const s of this.slots) if (s.spec.via === 'direct' && s.node === index) void this.handover(s);
  }

  /** Replace a direct slot's client by one on another node, with the same device store. */
  private handover(slot: Slot, target?: number): Promise<void> {
    slot.switching ??= (async () => {
      try {
        const old = slot.client;
        await old.close(); // rejects its outbox; waits until what it received was handled
        // Its send in flight (if any) must have settled before another client touches the store.
        if (slot.inflight) await withTimeout(slot.inflight, 3 * this.requestTimeoutMs + 2000, 'send to settle').catch(() => {});
        await sleep(200);
        let failedAt: number | undefined;
        for (;;) {
          if (this.closing) return;
          const up = this.cluster.upNodes().map((n) => n.index);
          // After a node would not take the client, another one (if any is up).
          const candidates = up.length > 1 && failedAt !== undefined ? up.filter((i) => i !== failedAt) : up;
          const choice = target !== undefined && candidates.includes(target) ? target : this.leastLoaded(candidates, slot);
          if (choice === undefined) {
            await sleep(200);
            continue;
          }
          slot.node = choice;
          slot.client = this.makeClient(slot);
          slot.handovers += 1;
          try {
            await withTimeout(slot.client.connect(), 30_000, `${slot.spec.deviceId} connect`);
            return;
          } catch (e) {
            this.log(`checker: ${slot.spec.deviceId} could not connect to node-${choice + 1}: ${(e as Error).message}`);
            const failed = slot.client;
            if (failed.connected) return;
            await failed.close();
            failedAt = choice;
            await sleep(500);
          }
        }
      } finally {
        slot.switching = undefined;
      }
    })();
    return slot.switching;
  }

  private leastLoaded(up: number[], except: Slot): number | undefined {
    let best: number | undefined;
    let bestLoad = Infinity;
    for (const i of up) {
      const load = this.slots.filter((s) => s !== except && s.spec.via === 'direct' && s.node === i).length;
      if (load < bestLoad) {
        best = i;
        bestLoad = load;
      }
    }
    return best;
  }

  private addConv(id: string, users: string[]): void {
    this.convMembers.set(id, users);
    for (const u of users) this.userConvs.set(u, [...(this.userConvs.get(u) ?? []), id]);
  }

  private async sendLoop(slot: Slot): Promise<void> {
    const convs = this.userConvs.get(slot.spec.userId) ?? [];
    while (this.sending) {
      if (slot.switching) {
        await slot.switching;
        continue;
      }
      if (slot.moveTo !== undefined) {
        const target = slot.moveTo;
        slot.moveTo = undefined;
        if (target !== slot.node && this.cluster.isUp(target)) {
          this.rebalanceMoves += 1;
          await this.handover(slot, target);
          continue;
        }
      }
      const conversationId = convs[Math.floor(this.random() * convs.length)]!;
      const token = `${slot.spec.deviceId}#${++slot.sent}`;
      const rec: Sent = { token, conversationId, from: slot.spec.deviceId, status: 'pending', startedAt: Date.now() };
      this.sent.push(rec);
      const client = slot.client;
      slot.inflight = client.sendText(conversationId, token).then(
        (ack: SendResult) => {
          rec.status = 'acked';
          rec.messageId = ack.messageId;
          rec.seq = ack.seq;
          rec.duplicateAck = ack.duplicate;
          rec.settledAt = Date.now();
        },
        (e: unknown) => {
          const err = e as { code?: string; details?: { queued?: boolean } };
          rec.status = err.details?.queued === true ? 'queued' : 'failed';
          rec.error = err.code ?? String(e);
          rec.settledAt = Date.now();
        },
      );
      await slot.inflight;
      slot.inflight = undefined;
      const [lo, hi] = this.pause;
      await sleep(lo + this.random() * (hi - lo));
    }
  }

  // --- verification ---------------------------------------------------------------------------

  /** Recipients of a message: every device of every member but the sending one. */
  private recipients(conversationId: string, fromDevice: string): Slot[] {
    const members = this.convMembers.get(conversationId) ?? [];
    return this.slots.filter((s) => members.includes(s.spec.userId) && s.spec.deviceId !== fromDevice);
  }

  /** Acked text messages (per the database: not receipts, not membership statements) not yet shown on a recipient device. */
  private async missing(): Promise<number> {
    await this.stored.load(false);
    const shown = this.slots.map((s) => new Set(s.seen.map((m) => m.messageId)));
    let n = 0;
    for (const [id] of this.acks) {
      const env = this.stored.get(id);
      if (!env || !env.text) continue;
      for (const slot of this.recipients(env.conversationId, env.senderDeviceId)) if (!shown[this.slots.indexOf(slot)]!.has(id)) n += 1;
    }
    return n;
  }

  private async report(meta: { faultsInjected: number; faultsByKind: Record<string, number> }): Promise<FaultReport> {
    const failures: string[] = [];
    const samples: FaultReport['samples'] = { lost: [], gaps: [], inversions: [], duplicates: [], decrypt: [], other: [] };
    const sample = (list: string[], s: string) => list.length < 10 && list.push(s);
    let storage: FaultReport['storage'];
    try {
      storage = await this.stored.load(true);
    } catch (e) {
      storage = { error: (e as Error).message };
    }
    const short = (id: string) => id.slice(0, 8);

    // What each device showed.
    let inversions = 0;
    let shownTwice = 0;
    const tokenIds = new Map<string, Set<string>>();
    const shownBy = this.slots.map(() => new Map<string, Seen>());
    for (const [i, slot] of this.slots.entries()) {
      for (const m of slot.seen) {
        tokenIds.set(m.text, new Set([...(tokenIds.get(m.text) ?? []), m.messageId]));
        if (shownBy[i]!.has(m.messageId)) {
          shownTwice += 1;
          sample(samples.duplicates, `${slot.spec.deviceId} showed ${m.text} (${short(m.messageId)}) again`);
        } else shownBy[i]!.set(m.messageId, m);
      }
      const lastSeq = new Map<string, number>();
      for (const m of slot.seen) {
        const prev = lastSeq.get(m.conversationId);
        if (prev !== undefined && m.seq <= prev) {
          inversions += 1;
          sample(samples.inversions, `${slot.spec.deviceId} in ${short(m.conversationId)}: seq ${m.seq} after ${prev}`);
        }
        lastSeq.set(m.conversationId, Math.max(prev ?? 0, m.seq));
      }
    }
    let storedTwice = 0;
    for (const [token, ids] of tokenIds) {
      if (ids.size > 1) {
        storedTwice += ids.size - 1;
        sample(samples.duplicates, `${token} stored as ${ids.size} messages`);
      }
    }

    // Every acked text message on every recipient device; stored but unacked ones too (reported apart).
    let expected = 0;
    let shown = 0;
    let late = 0;
    let lost = 0;
    let gaps = 0;
    let ackedText = 0;
    let ackedNotStored = 0;
    let storedUnacked = 0;
    let storedUnackedMissing = 0;
    for (const [id, ack] of this.acks) {
      const env = this.stored.get(id);
      if (!env) {
        ackedNotStored += 1;
        sample(samples.lost, `ack ${short(id)} (seq ${ack.seq} in ${short(ack.conversationId)} from ${ack.from}) is not in the database`);
      } else if (env.seq !== ack.seq || env.conversationId !== ack.conversationId) {
        sample(samples.other, `ack ${short(id)} says seq ${ack.seq}, the database ${env.seq}`);
      }
    }
    for (const env of this.stored.all()) {
      if (!env.text) continue;
      const acked = this.acks.has(env.messageId);
      if (acked) ackedText += 1;
      else storedUnacked += 1;
      for (const slot of this.recipients(env.conversationId, env.senderDeviceId)) {
        const hit = shownBy[this.slots.indexOf(slot)]!.get(env.messageId);
        if (!acked) {
          if (!hit) storedUnackedMissing += 1;
          continue;
        }
        expected += 1;
        if (hit) {
          shown += 1;
          if (hit.phase === 'resync') late += 1;
          continue;
        }
        lost += 1;
        const what = `seq ${env.seq} in ${short(env.conversationId)} from ${env.senderDeviceId} (${short(env.messageId)}) not shown on ${slot.spec.deviceId}`;
        sample(samples.lost, what);
        if (slot.seen.some((m) => m.conversationId === env.conversationId && m.seq > env.seq)) {
          gaps += 1;
          sample(samples.gaps, `${what}, which showed later seqs`);
        }
      }
    }
    // The app's view: what each sendText promise said.
    let ackMismatches = 0;
    for (const rec of this.sent) {
      if (rec.status !== 'acked') continue;
      const env = this.stored.get(rec.messageId!);
      const ids = tokenIds.get(rec.token);
      if ((env && env.seq !== rec.seq) || (ids && !ids.has(rec.messageId!))) {
        ackMismatches += 1;
        sample(samples.other, `${rec.token}: acked as ${short(rec.messageId!)} seq ${rec.seq}, stored seq ${env?.seq}, shown as ${[...(ids ?? [])].map(short).join(',')}`);
      }
    }
    const acksByToken = (rec: Sent) => [...(tokenIds.get(rec.token) ?? [])].some((id) => this.acks.has(id));
    const queued = this.sent.filter((r) => r.status === 'queued');
    const failed = this.sent.filter((r) => r.status === 'failed');
    const pending = this.sent.filter((r) => r.status === 'pending');
    for (const r of pending) sample(samples.other, `send ${r.token} never settled (${Math.round((Date.now() - r.startedAt) / 1000)} s)`);
    const byError: Record<string, number> = {};
    for (const r of failed) byError[r.error ?? '?'] = (byError[r.error ?? '?'] ?? 0) + 1;

    const decryptByReason: Record<string, number> = {};
    for (const slot of this.slots) {
      for (const e of slot.decryptErrors) {
        decryptByReason[e.reason] = (decryptByReason[e.reason] ?? 0) + 1;
        sample(samples.decrypt, `${slot.spec.deviceId}: seq ${e.seq} in ${short(e.conversationId)}: ${e.reason}`);
      }
    }
    const decryptFailures = this.slots.reduce((n, s) => n + s.decryptErrors.length, 0);
    const gaveUpReasons: Record<string, number> = {};
    const errorEvents: Record<string, number> = {};
    for (const s of this.slots) {
      for (const g of s.gaveUp) gaveUpReasons[g.reason] = (gaveUpReasons[g.reason] ?? 0) + 1;
      for (const [code, n] of s.errors) errorEvents[code] = (errorEvents[code] ?? 0) + n;
    }
    let stillQueued = 0;
    for (const s of this.slots) stillQueued += (await s.store.list('outbox')).length;

    const report: FaultReport = {
      ok: false,
      failures,
      durationMs: Date.now() - this.startedAt,
      faultsInjected: meta.faultsInjected,
      faultsByKind: meta.faultsByKind,
      messages: {
        attempted: this.sent.length,
        acked: ackedText,
        ackedToApp: this.sent.filter((r) => r.status === 'acked').length,
        queuedThenAcked: queued.filter(acksByToken).length,
        queuedNeverAcked: queued.filter((r) => !acksByToken(r)).length,
        failed: failed.length,
        failedByError: byError,
        failedButStored: failed.filter((r) => tokenIds.has(r.token)).length,
        neverSettled: pending.length,
        stillQueuedAtEnd: stillQueued,
        storedUnacked,
      },
      deliveries: { expected, shown, shownOnlyAfterForcedResync: late },
      lost,
      ackedNotStored,
      gaps,
      inversions,
      duplicates: { shownTwice, storedTwice },
      ackMismatches,
      decryptFailures,
      decryptFailuresByReason: decryptByReason,
      unavailable: this.slots.reduce((n, s) => n + s.unavailable, 0),
      storedUnackedMissing,
      storage,
      clients: {
        devices: this.slots.length,
        handovers: this.slots.reduce((n, s) => n + s.handovers, 0),
        rebalanceMoves: this.rebalanceMoves,
        sdkGaveUp: this.slots.reduce((n, s) => n + s.gaveUp.length, 0),
        sdkGaveUpReasons: gaveUpReasons,
        appReconnects: this.slots.reduce((n, s) => n + s.appReconnects, 0),
        errorEvents,
        notConnectedAtEnd: this.notConnectedAtEnd,
      },
      nodes: {
        unexpectedExits: this.cluster.unexpectedExits.length,
        restarts: this.cluster.nodes.reduce((n, x) => n + x.starts - 1, 0),
        watchdogExits: this.cluster.watchdogExits.length,
      },
      samples,
    };
    if (ackedText === 0) failures.push('no message was acked: the workload did not run');
    if (lost) failures.push(`lost: ${lost} deliveries of acked messages never shown`);
    if (ackedNotStored) failures.push(`lost: ${ackedNotStored} acked messages are not in the database`);
    if (gaps) failures.push(`gaps: ${gaps} acked messages skipped over`);
    if (inversions) failures.push(`inversions: ${inversions}`);
    if (shownTwice || storedTwice) failures.push(`duplicates: ${shownTwice} shown twice, ${storedTwice} stored twice`);
    if (decryptFailures) failures.push(`decryption failures: ${decryptFailures} ${JSON.stringify(decryptByReason)}`);
    if (ackMismatches) failures.push(`ack mismatches: ${ackMismatches}`);
    if (storedUnackedMissing) failures.push(`stored but never acked, and not delivered: ${storedUnackedMissing} deliveries`);
    if ('error' in storage) failures.push(`storage check failed: ${storage.error}`);
    // lastSeq behind the stored envelopes is a documented limit (docs/delivery.md: a node died between the
    // insert and raising lastSeq; the next append repairs it): reported, not failed.
    else if (storage.seqHoles || storage.duplicateSeqs) failures.push(`storage: ${storage.seqHoles} seq holes, ${storage.duplicateSeqs} duplicate seqs`);
    if (report.nodes.unexpectedExits) failures.push(`unexpected process exits: ${report.nodes.unexpectedExits} (${this.cluster.unexpectedExits.map((e) => e.what).join(', ')})`);
    if (report.clients.sdkGaveUp) failures.push(`the SDK stopped reconnecting ${report.clients.sdkGaveUp}× ${JSON.stringify(gaveUpReasons)}`);
    if (pending.length) failures.push(`${pending.length} sendText promises never settled`);
    if (stillQueued) failures.push(`${stillQueued} sends still in a persisted outbox at the end`);
    report.ok = failures.length === 0;
    return report;
  }
}

interface StoredEnvelopeRow {
  messageId: string;
  conversationId: string;
  seq: number;
  senderDeviceId: string;
  /** Neither a receipt, a membership statement nor a care team's key share (no body): a message the app shows. */
  text: boolean;
}

/** The envelopes collection as it is, read with the plain driver. */
class StoredIndex {
  private conn: mongoose.Connection | undefined;
  private readonly rows = new Map<string, StoredEnvelopeRow>();
  private readonly maxSeq = new Map<string, number>();

  constructor(private readonly cluster: FaultCluster) {}

  get(messageId: string): StoredEnvelopeRow | undefined {
    return this.rows.get(messageId);
  }

  all(): IterableIterator<StoredEnvelopeRow> {
    return this.rows.values();
  }

  /**
   * `full`: read everything and check the sequences (per conversation 1..max, no hole, no repeat,
   * lastSeq not behind). Otherwise only what is past the highest seq seen per conversation (polling).
   */
  async load(full: boolean): Promise<{ conversations: number; envelopes: number; seqHoles: number; duplicateSeqs: number; lastSeqBehind: number }> {
    this.conn ??= await mongoose.createConnection(this.cluster.mongoUri, { dbName: this.cluster.dbName, serverSelectionTimeoutMS: 10_000 }).asPromise();
    const db = this.conn.db!;
    // A conversation document's `_id` is (org, conversation id); envelopes and marks name it by `conversationId`.
    const conversations = await db.collection('conversations').find({}, { projection: { lastSeq: 1, conversationId: 1 } }).toArray();
    const filter = full ? {} : { $or: conversations.map((c) => ({ conversationId: c['conversationId'], seq: { $gt: this.maxSeq.get(String(c['conversationId'])) ?? 0 } })) };
    if (full) {
      this.rows.clear();
      this.maxSeq.clear();
    }
    const docs = conversations.length || full ? await db.collection('envelopes').find(filter, { projection: { messageId: 1, conversationId: 1, seq: 1, senderDeviceId: 1, kind: 1, membership: 1, body: 1 } }).toArray() : [];
    const seqs = new Map<string, number[]>();
    for (const d of docs) {
      const row: StoredEnvelopeRow = {
        messageId: String(d.messageId ?? d._id), // the _id is (org, device, client message id)
        conversationId: String(d.conversationId),
        seq: Number(d.seq),
        senderDeviceId: String(d.senderDeviceId),
        text: d.kind !== 'receipt' && !d.membership && d.body != null,
      };
      this.rows.set(row.messageId, row);
      this.maxSeq.set(row.conversationId, Math.max(this.maxSeq.get(row.conversationId) ?? 0, row.seq));
      seqs.set(row.conversationId, [...(seqs.get(row.conversationId) ?? []), row.seq]);
    }
    let seqHoles = 0;
    let duplicateSeqs = 0;
    let lastSeqBehind = 0;
    if (full) {
      for (const [, list] of seqs) {
        const distinct = new Set(list);
        duplicateSeqs += list.length - distinct.size;
        seqHoles += Math.max(...list) - distinct.size;
      }
      // A conversation's lastSeq is its highest seq mark (docs/delivery.md); its own field is a floor.
      const raised = new Map<string, number>();
      for (const set of await db.collection('seq_mark_sets').find({}).toArray()) {
        (set['conversationIds'] as string[]).forEach((id, i) => raised.set(id, Math.max(raised.get(id) ?? 0, Number((set['seqs'] as number[])[i] ?? 0))));
      }
      for (const c of conversations) {
        const id = String(c['conversationId']);
        const lastSeq = Math.max(Number(c['lastSeq'] ?? 0), raised.get(id) ?? 0);
        if (lastSeq < (this.maxSeq.get(id) ?? 0)) lastSeqBehind += 1;
      }
    }
    return { conversations: conversations.length, envelopes: this.rows.size, seqHoles, duplicateSeqs, lastSeqBehind };
  }

  async close(): Promise<void> {
    await this.conn?.close().catch(() => {});
    this.conn = undefined;
  }
}

/** A printable report: the counts first, then samples of anything that went wrong. */
export function formatReport(r: FaultReport): string {
  const m = r.messages;
  const json = (o: object) => (Object.keys(o).length ? ` ${JSON.stringify(o)}` : '');
  const lines = [
    `faults injected:        ${r.faultsInjected}${json(r.faultsByKind)}`,
    `duration:               ${(r.durationMs / 1000).toFixed(1)} s`,
    `messages acked:         ${m.acked} (of ${m.attempted} sendText calls: ${m.ackedToApp} resolved, ${m.queuedThenAcked} queued by a closed client and acked later, ${m.failed} failed${json(m.failedByError)})`,
    `  not acked:            ${m.queuedNeverAcked} queued never acked, ${m.neverSettled} never settled, ${m.stillQueuedAtEnd} still queued; stored unacked ${m.storedUnacked}; failed but stored ${m.failedButStored}`,
    `deliveries:             ${r.deliveries.shown} of ${r.deliveries.expected} expected (${r.deliveries.shownOnlyAfterForcedResync} only after a forced resync)`,
    `lost:                   ${r.lost} (+ ${r.ackedNotStored} acked but not in the database; ${r.storedUnackedMissing} deliveries of stored unacked messages missing)`,
    `duplicates:             ${r.duplicates.shownTwice + r.duplicates.storedTwice} (${r.duplicates.shownTwice} shown twice, ${r.duplicates.storedTwice} stored twice)`,
    `gaps:                   ${r.gaps}`,
    `inversions:             ${r.inversions}`,
    `decryption failures:    ${r.decryptFailures}${json(r.decryptFailuresByReason)}`,
    `ack mismatches:         ${r.ackMismatches}`,
    `unavailable:            ${r.unavailable}`,
    `storage:                ${JSON.stringify(r.storage)}`,
    `clients:                ${r.clients.devices} devices, ${r.clients.handovers} handovers (${r.clients.rebalanceMoves} for rebalancing), SDK gave up ${r.clients.sdkGaveUp}×${json(r.clients.sdkGaveUpReasons)}, app reconnects ${r.clients.appReconnects}, not connected at end ${r.clients.notConnectedAtEnd}`,
    `client error events:    ${JSON.stringify(r.clients.errorEvents)}`,
    `nodes:                  ${r.nodes.restarts} restarts, ${r.nodes.unexpectedExits} unexpected exits, ${r.nodes.watchdogExits} storage-watchdog exits (restarted)`,
    `verdict:                ${r.ok ? 'OK: every invariant held' : `FAILED: ${r.failures.join('; ')}`}`,
  ];
  for (const [k, list] of Object.entries(r.samples)) if (list.length) lines.push(`  ${k}:`, ...list.map((s) => `    ${s}`));
  return lines.join('\n');
}

export async function eventually(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs: number, everyMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await predicate()) return;
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
}

/** `p`, or an error naming `what` after `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return sharedWithTimeout(p, ms, () => new Error(`timed out after ${ms} ms: ${what}`));
}
