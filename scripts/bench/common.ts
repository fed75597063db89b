/**
 * Shared by the bench runner (run.ts), its load-generator workers (worker.ts) and the bare relays
 * (relays.ts): the variants, the IPC messages between runner and workers, the load layout and the
 * layout of a message's first bytes (how receivers measure latency and spot losses and duplicates).
 */

export type VariantId = 'ws' | 'socketio' | 'memory' | 'real' | 'storage' | 'two-nodes';
export const VARIANTS: ReadonlyArray<{ id: VariantId; letter: string; title: string }> = [
  { id: 'ws', letter: 'A', title: 'bare ws relay' },
  { id: 'socketio', letter: 'B', title: 'bare socket.io relay (MessagePack parser)' },
  { id: 'memory', letter: 'C', title: 'Curbside, memory adapters' },
  { id: 'real', letter: 'D', title: 'Curbside, Redis + Mongo-wire DB (FerretDB on PostgreSQL by default)' },
  { id: 'storage', letter: 'S', title: 'storage ceiling: the same envelopes by the plain mongodb driver (insertMany)' },
  { id: 'two-nodes', letter: 'E', title: 'two Curbside nodes behind the Redis adapter' },
];

/** What kind of client a worker opens. */
export type ClientKind = 'ws' | 'socketio' | 'curbside';
export const clientKindOf = (v: VariantId): ClientKind => (v === 'ws' ? 'ws' : v === 'socketio' ? 'socketio' : 'curbside');

/** How the load is shaped (every field a runner flag). */
export interface LoadShape {
  /** Members per care-team room. */
  roomSize: number;
  /** Share of messages sent to a room (the rest go to 1:1 conversations). */
  roomShare: number;
  /** Ciphertext bytes of an ordinary message body, plus `headerBytes`. */
  bodyBytes: number;
  headerBytes: number;
  /** Share of messages whose body is `largeBytes` instead. */
  largeShare: number;
  largeBytes: number;
  /** Bytes of each recipient device's share (a wrapped message key). */
  shareBytes: number;
  /**
   * Share of room messages that carry a share per member device. Care teams encrypt with sender keys:
   * most room messages are one body for every member, and only a (re)keying send names each device.
   * 1:1 messages always carry per-device shares.
   */
  rekeyShare: number;
}

/** One load-generator worker's part of the clients: whole rooms, so every message stays inside one worker. */
export interface WorkerInit {
  type: 'init';
  worker: number;
  variant: VariantId;
  urls: string[];
  /** First global user index and number of users (a multiple of roomSize). */
  firstUser: number;
  users: number;
  shape: LoadShape;
  runId: string;
  jwt: { privateKeyPem: string; issuer: string; audience: string; orgId: string };
  /** Connections a worker opens at once. */
  connectConcurrency: number;
  seed: number;
}

export type RunnerToWorker =
  | WorkerInit
  | { type: 'connect' }
  | { type: 'setup' }
  // senders > 0: closed loop, each of `senders` sends its next message when the last is acked (`rate` unused)
  // touch (with senders): every member of every conversation sends once, then the step ends (warm-up)
  | { type: 'step'; step: number; rate: number; durationMs: number; drainMs: number; senders?: number; touch?: boolean }
  | { type: 'idle'; clients: number; firstUser: number; urls?: string[] } // urls: the idle test's own servers (default: the load's)
  | { type: 'idle-close' }
  | { type: 'close' };

export interface ConnectReport {
  type: 'connected';
  connected: number;
  failed: number;
  errors: string[];
  wallMs: number;
  /** Per-connection latency (socket created → connected, including authentication), HDR µs. */
  histogram: string;
  cpuMs: number;
}

export interface StepReport {
  type: 'step-done';
  step: number;
  target: number;
  sent: number;
  /** Sends that were due but never went out because the worker fell behind by more than the slack. */
  skipped: number;
  sendWallMs: number;
  acked: number;
  ackErrors: Record<string, number>;
  unacked: number;
  expectedDeliveries: number;
  delivered: number;
  lost: number;
  duplicates: number;
  /** Received something that no sent message explains (a harness bug if ever non-zero). */
  unknown: number;
  /** Sender → receiver, HDR µs (compressed base64). */
  latency: string;
  /** Send → durable ack (bare relays: their plain ack), HDR µs. */
  ack: string;
  /** Worker CPU over the send window, ms. */
  cpuMs: number;
  /** Longest the send loop ran behind its schedule, ms. */
  maxBehindMs: number;
  bytesSent: number;
}

export type WorkerToRunner =
  | { type: 'ready' }
  | ConnectReport
  | { type: 'setup-done'; conversations: number; wallMs: number }
  | StepReport
  | { type: 'idle-closed' }
  | { type: 'error'; message: string };

/**
 * The first bytes of every message body, which neither relay nor hub reads: message number (per
 * worker), send time (worker's performance.now(), ms) and the number of the conversation.
 */
export const HEADER = { msgNo: 0, sentAt: 4, conv: 12, bytes: 16 } as const;

export function writeHeader(buf: Uint8Array, msgNo: number, sentAt: number, conv: number): void {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  v.setUint32(HEADER.msgNo, msgNo);
  v.setFloat64(HEADER.sentAt, sentAt);
  v.setUint32(HEADER.conv, conv);
}

export function readHeader(buf: Uint8Array): { msgNo: number; sentAt: number; conv: number } {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return { msgNo: v.getUint32(HEADER.msgNo), sentAt: v.getFloat64(HEADER.sentAt), conv: v.getUint32(HEADER.conv) };
}

/** Bare ws relay frames: [op u8][room u32][…]. */
export const WsOp = { JOIN: 0, MSG: 1, ACK: 2, JOINED: 3 } as const;

/** HDR histogram settings (µs, up to 10 minutes). */
export const HDR = { lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 } as const;
