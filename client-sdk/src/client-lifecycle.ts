/**
 * The connection lifecycle of a `CurbsideClient`: `connect` (load what an earlier run kept, open the
 * socket, resolve on the first sync), what every (re)connect and each of the hub's pushes set off in
 * the client's parts, and `disconnect`/`close` (stop everything; wait until every envelope received
 * is handled and every send started is persisted). The client builds its parts and offers them to the
 * app; this module runs them over the life of the connection.
 */
import { ErrorCode, ServerEvent, DeviceIdentitySchema, DeviceListChangedSchema, DeviceRemovedSchema, KeysLowSchema } from '@curbside/shared';
import { asCurbsideError, type CurbsideError } from './errors.js';
import type { CurbsideClientEvents } from './client-types.js';
import type { SecureMessenger } from './e2ee/secure-messenger.js';
import type { HubConnection } from './hub/connection.js';
import type { Outbox } from './hub/outbox.js';
import type { Sync } from './hub/sync.js';
import type { HubApi } from './hub/api.js';
import type { Devices } from './devices.js';
import type { Alerts } from './alerts.js';
import type { TextQueue } from './text-queue.js';

/** The client's parts the lifecycle drives, and its events. */
export interface ClientLifecycleDeps {
  connection: HubConnection;
  /** End-to-end encryption is on (`e2ee` option): keys, devices and texts take part. */
  e2ee: boolean;
  hub: Pick<HubApi, 'noteMembers'>;
  messenger: Pick<SecureMessenger, 'loadReceipts' | 'publishKeys' | 'forgetDevice' | 'roles' | 'deviceLists'>;
  sync: Pick<Sync, 'prepare' | 'resync' | 'settled' | 'stop' | 'receiveLive'>;
  outbox: Pick<Outbox, 'restore' | 'flush' | 'offline' | 'stop'>;
  texts: Pick<TextQueue, 'flush' | 'stop'>;
  alerts: Pick<Alerts, 'resync' | 'receive'>;
  devices: Pick<Devices, 'settle' | 'linkState'>;
  /** The client's own `emit` and `once`: what the lifecycle tells the app, and waits for. */
  emit: <E extends keyof CurbsideClientEvents>(event: E, ...args: Parameters<CurbsideClientEvents[E]>) => void;
  once: <E extends keyof CurbsideClientEvents>(event: E, listener: CurbsideClientEvents[E]) => () => void;
}

export class ClientLifecycle {
  private receiptsLoaded = false;
  /** `connect()` calls waiting for their first sync: each rejects if the connection or the sync fails first. */
  private readonly waiting = new Set<(error: CurbsideError) => void>();
  /** Sends being encrypted or persisted; `close()` waits for them before the store changes hands. */
  private readonly pendingOps = new Set<Promise<unknown>>();

  constructor(private readonly deps: ClientLifecycleDeps) {
    this.wire();
  }

  /** Connect, authenticate and resync; resolves once the first sync is done (see `CurbsideClient.connect`). */
  async connect(): Promise<void> {
    const { connection, messenger, sync, outbox } = this.deps;
    connection.resume();
    if (!this.receiptsLoaded) {
      await messenger.loadReceipts();
      this.receiptsLoaded = true;
    }
    await sync.prepare();
    await outbox.restore();
    return new Promise<void>((resolve, reject) => {
      const failed = (e: CurbsideError) => {
        offSynced();
        this.waiting.delete(failed);
        reject(e);
      };
      const offSynced = this.deps.once('synced', () => {
        this.waiting.delete(failed);
        resolve();
      });
      this.waiting.add(failed);
      if (connection.open()) void sync.resync();
    });
  }

  /**
   * The hub refused the connection, or the sync failed: the app hears it as an `error`, and every
   * `connect()` still waiting for its first sync rejects with it. Only these fail a connect; what a
   * connect starts alongside (keys, alerts, roles, device lists) reports its problems as errors alone.
   */
  connectFailed(error: CurbsideError): void {
    this.deps.emit('error', error);
    for (const reject of [...this.waiting]) reject(error);
  }

  /** Disconnect and wait until what was received is handled and what was sent is persisted (see `CurbsideClient.close`). */
  async close(): Promise<void> {
    this.disconnect();
    // Handling a received envelope can start a send (a delivered receipt), and a send can wait on the
    // pipeline: settle both until neither has anything left.
    while (true) {
      await this.deps.sync.settled();
      if (this.pendingOps.size === 0) break;
      await Promise.allSettled([...this.pendingOps]);
    }
  }

  /** Go offline for good, until `connect()` again (see `CurbsideClient.disconnect`). */
  disconnect(): void {
    this.deps.connection.stop();
    this.deps.sync.stop();
    this.deps.outbox.stop();
    this.deps.texts.stop();
    this.deps.messenger.roles.stopWatching();
  }

  /** Keep `op` in {@link pendingOps} until it settles. */
  track<T>(op: Promise<T>): Promise<T> {
    this.pendingOps.add(op);
    const done = () => this.pendingOps.delete(op);
    op.then(done, done);
    return op;
  }

  /** Connection events and the hub's pushes, to the parts that act on them and to the app. */
  private wire(): void {
    const { connection, e2ee, messenger, outbox, sync, alerts, devices, texts, hub, emit } = this.deps;
    // What a connect sets off runs again on the next one: losing the connection under it is not the
    // app's problem (as for the sync itself), and must not fail a `connect()` waiting for its first sync.
    const report = (e: unknown) => {
      const error = asCurbsideError(e);
      if (error.code !== ErrorCode.NOT_CONNECTED) emit('error', error);
    };
    connection.on('connected', () => {
      emit('connected');
      outbox.flush();
      void alerts.resync().catch(report);
      if (e2ee) void messenger.roles.watchAll().catch(report);
      const ready = e2ee ? messenger.publishKeys().then(() => devices.settle()) : Promise.resolve();
      void ready.then(
        () => {
          if (e2ee) void texts.flush().catch(report);
          return sync.resync();
        },
        (e: unknown) => {
          report(e);
          return sync.resync();
        },
      );
    });
    connection.on('disconnected', (info) => {
      outbox.offline();
      emit('disconnected', info);
    });
    connection.on('error', (e) => this.connectFailed(e));
    connection.onPush(ServerEvent.ENVELOPE, (raw) => sync.receiveLive(raw));
    connection.onPush(ServerEvent.CONVERSATION, (conversation) => {
      hub.noteMembers(conversation);
      emit('conversation', conversation);
    });
    connection.onPush(ServerEvent.TYPING, (notice) => emit('typing', notice));
    connection.onPush(ServerEvent.ALERT, (raw) => alerts.receive(raw));
    connection.onPush(ServerEvent.KEYS_LOW, (raw) => {
      const parsed = KeysLowSchema.safeParse(raw);
      if (!parsed.success) return;
      // Published again on the next connect, if the connection drops under it.
      if (e2ee) void messenger.publishKeys().catch(report);
      emit('prekeysLow', parsed.data);
    });
    connection.onPush(ServerEvent.DEVICE_REMOVED, (raw) => {
      const parsed = DeviceRemovedSchema.safeParse(raw);
      if (!parsed.success) return;
      // Drop our sessions with it; the hub no longer lists it, so no new message is encrypted to it.
      void messenger.forgetDevice(parsed.data.userId, parsed.data.deviceId).finally(() => emit('deviceRemoved', parsed.data));
    });
    connection.onPush(ServerEvent.DEVICE_ADDED, (raw) => {
      const parsed = DeviceIdentitySchema.safeParse(raw);
      if (!parsed.success) return;
      emit('device', parsed.data);
      if (parsed.data.userId === connection.identity.userId && e2ee) emit('linkRequest', { deviceId: parsed.data.deviceId });
    });
    connection.onPush(ServerEvent.DEVICE_LIST_CHANGED, (raw) => {
      const parsed = DeviceListChangedSchema.safeParse(raw);
      if (!parsed.success || !e2ee) return;
      const { userId, version } = parsed.data;
      void messenger.deviceLists
        .refresh(userId, version)
        .then(() => (userId === connection.identity.userId && devices.linkState === 'pending' ? devices.settle() : undefined))
        .catch((e: unknown) => emit('error', asCurbsideError(e)));
    });
  }
}
