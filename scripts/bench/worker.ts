/**
 * Long file: one load-generator program, read top to bottom.
 *
 * One load-generator process of the bench (forked by run.ts; talks over IPC, see common.ts).
 * It owns whole rooms and the 1:1 pairs inside them, so every message it sends is received by its
 * own clients: latency uses one clock (performance.now()), and loss and duplicates are counted here.
 * Payloads are pre-generated random bytes of the right shape (the hub never decrypts): only the
 * first 16 bytes of each body (message number, send time, conversation) are written per message.
 */
import { createPrivateKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import * as hdr from 'hdr-histogram-js';
import { io as ioClient, type Socket } from 'socket.io-client';
import { WebSocket } from 'ws';
import { signedPrekeyMessage, syncAckDelayMs, wireParser } from '@curbside/shared';
import { HDR, HEADER, WsOp, clientKindOf, readHeader, writeHeader, type ClientKind, type ConnectReport, type RunnerToWorker, type StepReport, type WorkerInit, type WorkerToRunner } from './common.js';

const send = (m: WorkerToRunner) => process.send!(m);

let init: WorkerInit;
let kind: ClientKind;
let jwtKey: KeyObject;

interface Client {
  userId: string;
  deviceId: string;
  sock?: Socket | undefined;
  ws?: WebSocket | undefined;
}

interface Conversation {
  /** Room name (relay), conversation id (Curbside) or room number (ws). */
  id: string;
  wsRoom: number;
  members: number[];
  isRoom: boolean;
}

const clients: Client[] = [];
const convs: Conversation[] = [];
const roomConvs: number[] = [];
const directConvs: number[] = [];
/** Position of each client in each of its conversations: key conv * 65536 + local user. */
const memberPos = new Map<number, number>();
let idleClients: Client[] = [];

// Per-message state. status: 0 never sent, 1 pending, 2 complete, 3 expired (counted lost)
let status = new Uint8Array(1 << 16);
const pending = new Map<number, { mask: number; remaining: number }>();
let nextMsgNo = 1;
let stats = freshStats();
let ackOutstanding = 0;
const wsAckT0 = new Map<number, number>();

function freshStats() {
  return {
    acked: 0,
    ackErrors: {} as Record<string, number>,
    delivered: 0,
    expected: 0,
    duplicates: 0,
    unknown: 0,
    lost: 0,
    latency: hdr.build(HDR),
    ack: hdr.build(HDR),
  };
}

function b64url(x: Buffer | string): string {
  return Buffer.from(x).toString('base64url');
}

function mintToken(userId: string, deviceId: string): string {
  const { issuer, audience, orgId } = init.jwt;
  const now = Math.floor(Date.now() / 1000);
  const header = b64url(JSON.stringify({ alg: 'ES256', typ: 'JWT' }));
  const payload = b64url(JSON.stringify({ sub: userId, org: orgId, dev: deviceId, iss: issuer, aud: audience, iat: now, exp: now + 6 * 3600, jti: `${deviceId}-${now}` }));
  const sig = sign('sha256', Buffer.from(`${header}.${payload}`), { key: jwtKey, dsaEncoding: 'ieee-p1363' });
  return `${header}.${payload}.${b64url(sig)}`;
}

const wsUrl = (u: string) => u.replace(/^http/, 'ws');

/** Open one client; resolves when it is connected (Curbside: authenticated). */
function open(c: Client, url: string): Promise<void> {
  if (kind === 'ws') {
    return new Promise((ok, fail) => {
      const ws = new WebSocket(wsUrl(url), { perMessageDeflate: false });
      ws.binaryType = 'nodebuffer';
      c.ws = ws;
      ws.once('open', () => ok());
      ws.once('error', (e) => fail(e));
    });
  }
  const sock = ioClient(url, {
    transports: ['websocket'],
    parser: wireParser,
    forceNew: true,
    reconnection: false,
    timeout: 120_000,
    ...(kind === 'curbside' ? { auth: { token: mintToken(c.userId, c.deviceId) } } : {}),
  });
  c.sock = sock;
  return new Promise((ok, fail) => {
    sock.once('connect', () => ok());
    sock.once('connect_error', (e: Error & { data?: unknown }) => fail(new Error(`${e.message}${e.data ? ` ${JSON.stringify(e.data)}` : ''}`)));
  });
}

async function connectAll(list: Client[], firstIndex: number, urls: readonly string[] = init.urls): Promise<ConnectReport> {
  const h = hdr.build(HDR);
  const errors: string[] = [];
  let connected = 0;
  let failed = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let next = 0;
  const lane = async () => {
    while (next < list.length) {
      const i = next++;
      const c = list[i]!;
      const t = performance.now();
      try {
        await open(c, urls[(firstIndex + i) % urls.length]!);
        h.recordValue(Math.max(1, Math.round((performance.now() - t) * 1000)));
        connected++;
      } catch (e) {
        failed++;
        if (errors.length < 5) errors.push((e as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(init.connectConcurrency, list.length) }, lane));
  const cpu = process.cpuUsage(cpu0);
  return { type: 'connected', connected, failed, errors, wallMs: performance.now() - t0, histogram: hdr.encodeIntoCompressedBase64(h), cpuMs: (cpu.user + cpu.system) / 1000 };
}

function request<T>(sock: Socket, event: string, payload: unknown): Promise<T> {
  return new Promise((ok, fail) => {
    sock.timeout(120_000).emit(event, payload, (err: Error | null, res: { ok: boolean; data?: T; error?: { code: string; message: string } }) => {
      if (err) return fail(err);
      if (!res?.ok) return fail(new Error(`${event}: ${res?.error?.code}: ${res?.error?.message}`));
      ok(res.data as T);
    });
  });
}

async function inLanes<T>(items: T[], lanes: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(lanes, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}

/** Curbside: publish keys for every device, then create the rooms and 1:1 conversations. Relays: join rooms. */
async function setup(): Promise<number> {
  const { roomSize } = init.shape;
  const rooms = init.users / roomSize;
  const plan: Array<{ members: number[]; isRoom: boolean }> = [];
  for (let r = 0; r < rooms; r++) {
    const members = Array.from({ length: roomSize }, (_, i) => r * roomSize + i);
    plan.push({ members, isRoom: true });
    for (let i = 0; i + 1 < roomSize; i += 2) plan.push({ members: [r * roomSize + i, r * roomSize + i + 1], isRoom: false });
  }
  if (kind === 'curbside') {
    await inLanes(clients, init.connectConcurrency, async (c) => {
      const { publicKey, privateKey } = generateKeyPairSync('ed25519');
      const identityKey = new Uint8Array(Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url'));
      const spk = new Uint8Array(randomBytes(32));
      await request(c.sock!, 'keys:publish', {
        identityKey,
        signedPrekey: { keyId: 1, publicKey: spk, signature: new Uint8Array(sign(null, signedPrekeyMessage(spk), privateKey)) },
      });
    });
  }
  convs.length = 0;
  for (const p of plan) convs.push({ id: '', wsRoom: init.worker * 1_000_000 + convs.length, members: p.members, isRoom: p.isRoom });
  await inLanes(convs, init.connectConcurrency, async (conv, ci) => {
    conv.members.forEach((u, pos) => memberPos.set(ci * 65536 + u, pos));
    (conv.isRoom ? roomConvs : directConvs).push(ci);
    if (kind === 'curbside') {
      const owner = clients[conv.members[0]!]!;
      const others = conv.members.slice(1).map((u) => clients[u]!.userId);
      const req = conv.isRoom ? { kind: 'group', memberUserIds: others } : { kind: 'direct', peerUserId: others[0] };
      conv.id = (await request<{ id: string }>(owner.sock!, 'conversation:create', req)).id;
    } else if (kind === 'socketio') {
      conv.id = `w${init.worker}-c${ci}`;
    }
  });
  if (kind === 'socketio') {
    await inLanes(clients, init.connectConcurrency, async (c, u) => {
      const mine = convs.map((cv) => cv).filter((cv) => cv.members.includes(u)).map((cv) => cv.id);
      await new Promise<void>((ok) => c.sock!.emit('join', mine, () => ok()));
    });
  } else if (kind === 'ws') {
    await inLanes(clients, init.connectConcurrency, async (c, u) => {
      const mine = convs.filter((cv) => cv.members.includes(u));
      let left = mine.length;
      await new Promise<void>((ok) => {
        const onJoined = (data: Buffer) => {
          if (data[0] === WsOp.JOINED && --left === 0) {
            c.ws!.off('message', onJoined);
            ok();
          }
        };
        c.ws!.on('message', onJoined);
        for (const cv of mine) {
          const f = Buffer.allocUnsafe(5);
          f[0] = WsOp.JOIN;
          f.writeUInt32BE(cv.wsRoom, 1);
          c.ws!.send(f);
        }
      });
    });
  }
  // Receivers.
  clients.forEach((c, u) => {
    if (kind === 'curbside')
      c.sock!.on('envelope', (e: { body?: Uint8Array; conversationId: string; seq: number }) => {
        if (e.body) onReceive(u, e.body);
        noteProcessed(c, e.conversationId, e.seq);
      });
    else if (kind === 'socketio') c.sock!.on('msg', (m: { body?: Uint8Array }) => m.body && onReceive(u, m.body));
    else
      c.ws!.on('message', (data: Buffer) => {
        if (data[0] === WsOp.MSG) onReceive(u, data.subarray(5));
        else if (data[0] === WsOp.ACK) onAck(data.readUInt32BE(1), undefined);
      });
  });
  return convs.length;
}

/** The SDK's delivery acks (shared/src/sync-acks.ts): what a device processed, per conversation, batched. */
const unacked = new Map<Client, Map<string, number>>();
const lastAckAt = new Map<Client, number>();

function noteProcessed(c: Client, conversationId: string, seq: number): void {
  let m = unacked.get(c);
  if (!m) {
    unacked.set(c, (m = new Map()));
    setTimeout(
      () => {
        unacked.delete(c);
        lastAckAt.set(c, Date.now());
        const cursors = [...m!].map(([id, afterSeq]) => ({ conversationId: id, afterSeq }));
        c.sock!.emit('sync:ack', { cursors }, () => {});
      },
      syncAckDelayMs(Date.now(), lastAckAt.get(c) ?? -Infinity),
    );
  }
  if ((m.get(conversationId) ?? 0) < seq) m.set(conversationId, seq);
}

function onReceive(user: number, body: Uint8Array): void {
  if (body.byteLength < HEADER.bytes) {
    stats.unknown++;
    return;
  }
  const h = readHeader(body);
  const st = h.msgNo < status.length ? status[h.msgNo] : 0;
  if (st === 2) {
    stats.duplicates++;
    return;
  }
  const p = pending.get(h.msgNo);
  const pos = memberPos.get(h.conv * 65536 + user);
  if (!p || pos === undefined) {
    stats.unknown++; // never sent, sent to someone else, or arrived after its step was closed (expired)
    return;
  }
  const bit = 1 << pos;
  if (p.mask & bit) {
    stats.duplicates++;
    return;
  }
  p.mask |= bit;
  stats.delivered++;
  stats.latency.recordValue(Math.max(1, Math.round((performance.now() - h.sentAt) * 1000)));
  if (--p.remaining === 0) {
    pending.delete(h.msgNo);
    status[h.msgNo] = 2;
  }
}

/** Closed-loop senders: what runs once a message is acked (its sender's next send). */
const afterAck = new Map<number, () => void>();

function onAck(msgNo: number, error: string | undefined, t0?: number): void {
  const start = t0 ?? wsAckT0.get(msgNo);
  wsAckT0.delete(msgNo);
  ackOutstanding--;
  const next = afterAck.get(msgNo);
  if (next) {
    afterAck.delete(msgNo);
    setImmediate(next);
  }
  if (error) {
    stats.ackErrors[error] = (stats.ackErrors[error] ?? 0) + 1;
    // Refused (e.g. UNAVAILABLE from an overloaded node): its sender knows, nobody is owed it, so its
    // deliveries are neither expected nor lost (what it would have cost shows in ackErrors).
    const p = pending.get(msgNo);
    if (p) {
      pending.delete(msgNo);
      stats.expected -= p.remaining;
      status[msgNo] = 3;
    }
    return;
  }
  stats.acked++;
  if (start !== undefined) stats.ack.recordValue(Math.max(1, Math.round((performance.now() - start) * 1000)));
}

// Pre-generated payload material.
let bodyTemplate: Buffer;
let shareTemplates: Uint8Array[] = [];
let rng = 1;
const rand = () => {
  // xorshift32: reproducible per seed, cheap.
  rng ^= rng << 13;
  rng ^= rng >>> 17;
  rng ^= rng << 5;
  return (rng >>> 0) / 4294967296;
};

/** Touch steps: every member of every conversation sends once, in this order (see `step`). */
let touchQueue: Array<{ ci: number; senderPos: number }> | undefined;

function sendOne(then?: () => void): number {
  const { shape } = init;
  const forced = touchQueue?.pop();
  const room = forced ? convs[forced.ci]!.isRoom : rand() < shape.roomShare || directConvs.length === 0;
  const list = room ? roomConvs : directConvs;
  const ci = forced ? forced.ci : list[Math.floor(rand() * list.length)]!;
  const conv = convs[ci]!;
  const senderPos = forced ? forced.senderPos : Math.floor(rand() * conv.members.length);
  const sender = clients[conv.members[senderPos]!]!;
  const size = rand() < shape.largeShare ? shape.largeBytes : shape.bodyBytes + shape.headerBytes;
  const msgNo = nextMsgNo++;
  if (then) afterAck.set(msgNo, then);
  if (msgNo >= status.length) {
    const grown = new Uint8Array(status.length * 2);
    grown.set(status);
    status = grown;
  }
  status[msgNo] = 1;
  pending.set(msgNo, { mask: 1 << senderPos, remaining: conv.members.length - 1 });
  stats.expected += conv.members.length - 1;
  ackOutstanding++;
  const t0 = performance.now();
  const others = conv.members.filter((_, i) => i !== senderPos);
  // Sender keys: a room message is one body for all, unless it (re)keys the room.
  const sharesFor = room && rand() >= shape.rekeyShare ? [] : others;
  if (kind === 'ws') {
    const frame = Buffer.allocUnsafe(5 + size + sharesFor.length * shape.shareBytes);
    frame[0] = WsOp.MSG;
    frame.writeUInt32BE(conv.wsRoom, 1);
    bodyTemplate.copy(frame, 5, 0, size + sharesFor.length * shape.shareBytes);
    writeHeader(frame.subarray(5), msgNo, t0, ci);
    wsAckT0.set(msgNo, t0);
    sender.ws!.send(frame);
    return frame.length;
  }
  const body = Buffer.allocUnsafe(size);
  bodyTemplate.copy(body, 0, 0, size);
  writeHeader(body, msgNo, t0, ci);
  const recipients = sharesFor.map((u) => ({ deviceId: clients[u]!.deviceId, ciphertext: shareTemplates[u % shareTemplates.length]! }));
  const req = { conversationId: conv.id, clientMessageId: `${init.runId}-w${init.worker}-${msgNo}`, body, ...(recipients.length ? { recipients } : {}) };
  sender.sock!.emit(kind === 'curbside' ? 'envelope:send' : 'msg', req, (res: { ok: boolean; error?: { code: string } }) =>
    onAck(msgNo, res?.ok ? undefined : (res?.error?.code ?? 'NO_ANSWER'), t0),
  );
  return size + sharesFor.length * shape.shareBytes;
}

async function step(m: Extract<RunnerToWorker, { type: 'step' }>): Promise<StepReport> {
  stats = freshStats();
  const { rate, durationMs, drainMs } = m;
  const slackMs = 1000;
  const maxBurst = Math.max(1, Math.ceil((rate * slackMs) / 1000));
  let sent = 0;
  let skipped = 0;
  let maxBehindMs = 0;
  let bytesSent = 0;
  const first = nextMsgNo;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  if (m.touch) touchQueue = convs.flatMap((c, ci) => c.members.map((_, senderPos) => ({ ci, senderPos })));
  if (m.senders) {
    // Closed loop: `senders` concurrent senders, each sending again as soon as its last send is acked.
    // A touch step instead ends once every member of every conversation has sent once.
    await new Promise<void>((done) => {
      let running = m.senders!;
      const loop = () => {
        if (touchQueue ? touchQueue.length === 0 : performance.now() - t0 >= durationMs) {
          if (--running === 0) done();
          return;
        }
        sent++;
        bytesSent += sendOne(loop);
      };
      for (let i = 0; i < m.senders!; i++) loop();
      // A send never acked would hold its sender forever: the step ends anyway (counted unacked).
      setTimeout(done, (touchQueue ? 600_000 : durationMs) + 30_000).unref();
    });
    touchQueue = undefined;
  } else await new Promise<void>((done) => {
    const tick = () => {
      const elapsed = Math.min(performance.now() - t0, durationMs);
      let due = Math.floor((rate * elapsed) / 1000) - sent - skipped;
      if (rate > 0) maxBehindMs = Math.max(maxBehindMs, (due / rate) * 1000);
      if (due > maxBurst) {
        skipped += due - maxBurst;
        due = maxBurst;
      }
      for (let i = 0; i < due; i++) bytesSent += sendOne();
      sent += Math.max(0, due);
      if (elapsed >= durationMs) return done();
      setTimeout(tick, 1);
    };
    tick();
  });
  const sendWallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  // Drain: wait for every delivery and ack, at most drainMs.
  const deadline = performance.now() + drainMs;
  while ((pending.size > 0 || ackOutstanding > 0) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  let lost = 0;
  for (const [msgNo, p] of pending) {
    lost += p.remaining;
    status[msgNo] = 3;
  }
  pending.clear();
  const unacked = ackOutstanding;
  ackOutstanding = 0; // late acks of this step are not counted in the next
  wsAckT0.clear();
  afterAck.clear();
  void first;
  return {
    type: 'step-done',
    step: m.step,
    target: m.senders ? sent : Math.round((rate * durationMs) / 1000),
    sent,
    skipped,
    sendWallMs,
    acked: stats.acked,
    ackErrors: stats.ackErrors,
    unacked,
    expectedDeliveries: stats.expected,
    delivered: stats.delivered,
    lost,
    duplicates: stats.duplicates,
    unknown: stats.unknown,
    latency: hdr.encodeIntoCompressedBase64(stats.latency),
    ack: hdr.encodeIntoCompressedBase64(stats.ack),
    cpuMs: (cpu.user + cpu.system) / 1000,
    maxBehindMs: Math.round(maxBehindMs),
    bytesSent,
  };
}

function closeClients(list: Client[]): void {
  for (const c of list) {
    c.sock?.disconnect();
    c.ws?.terminate();
  }
}

process.on('message', (raw: unknown) => {
  const m = raw as RunnerToWorker;
  const run = async (): Promise<WorkerToRunner | undefined> => {
    switch (m.type) {
      case 'init': {
        init = m;
        kind = clientKindOf(m.variant);
        jwtKey = createPrivateKey(m.jwt.privateKeyPem);
        rng = (m.seed * 2654435761 + m.worker + 1) >>> 0 || 1;
        const maxRecipients = m.shape.roomSize - 1;
        bodyTemplate = randomBytes(Math.max(m.shape.largeBytes, m.shape.bodyBytes + m.shape.headerBytes) + maxRecipients * m.shape.shareBytes);
        shareTemplates = Array.from({ length: 64 }, () => new Uint8Array(randomBytes(m.shape.shareBytes)));
        for (let i = 0; i < m.users; i++) {
          const g = m.firstUser + i;
          clients.push({ userId: `bench-u${g}`, deviceId: `bench-u${g}-d` });
        }
        return { type: 'ready' };
      }
      case 'connect':
        return connectAll(clients, init.firstUser);
      case 'setup': {
        const t = performance.now();
        const n = await setup();
        return { type: 'setup-done', conversations: n, wallMs: performance.now() - t };
      }
      case 'step':
        return step(m);
      case 'idle': {
        idleClients = Array.from({ length: m.clients }, (_, i) => ({ userId: `idle-u${m.firstUser + i}`, deviceId: `idle-u${m.firstUser + i}-d` }));
        return connectAll(idleClients, m.firstUser, m.urls);
      }
      case 'idle-close':
        closeClients(idleClients);
        idleClients = [];
        return { type: 'idle-closed' };
      case 'close':
        closeClients(clients);
        closeClients(idleClients);
        setTimeout(() => process.exit(0), 200);
        return undefined;
    }
  };
  run().then(
    (reply) => reply && send(reply),
    (e: unknown) => send({ type: 'error', message: e instanceof Error ? (e.stack ?? e.message) : String(e) }),
  );
});
process.on('disconnect', () => process.exit(0));
