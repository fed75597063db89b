import type { DeviceStore } from '../stores/store.js';

/** Per-recipient status of a message this user sent. `read` implies `delivered`. */
export type ReceiptStatus = 'sent' | 'delivered' | 'read';

/** A receipt as the app sees it. */
export interface Receipt {
  conversationId: string;
  messageId: string;
  /** Who received or read it, and on which device. */
  userId: string;
  deviceId: string;
  /**
   * `acknowledged`: the user acknowledged an urgent message (it implies `read`). Sealed end to end by
   * their device, so unlike the hub's record (`client.alerts`) the hub cannot make it up.
   */
  status: 'delivered' | 'read' | 'acknowledged';
}

const RANK: Record<ReceiptStatus, number> = { sent: 0, delivered: 1, read: 2 };
/** Messages remembered per direction; the oldest are forgotten first. */
const MAX_TRACKED = 10_000;

interface SentEntry {
  conversationId: string;
  statuses: Record<string, ReceiptStatus>;
}
interface ReceivedEntry {
  conversationId: string;
  senderUserId: string;
}

/**
 * Delivery and read state: statuses of what this device sent, and who sent what it received (so
 * `markRead` knows where to send the receipt), kept in the device store's `receipts` namespace so
 * both survive a restart (a message received before a reload can still be marked read after it,
 * and a receipt that arrives after a reload still moves the status). The newest
 * {@link MAX_TRACKED} per direction are kept. Receipts themselves travel encrypted.
 */
export class ReceiptBook {
  private readonly sent = new Map<string, SentEntry>();
  private readonly received = new Map<string, ReceivedEntry>();
  private loaded: Promise<void> | undefined;

  constructor(private readonly store?: DeviceStore) {}

  /** Load what an earlier run kept. Idempotent; every other method waits for it. */
  load(): Promise<void> {
    this.loaded ??= (async () => {
      if (!this.store) return;
      const entries = await this.store.list<{ at: number } & (SentEntry | ReceivedEntry)>('receipts');
      entries.sort((a, b) => a[1].at - b[1].at);
      for (const [key, value] of entries) {
        if (key.startsWith(SENT)) this.sent.set(key.slice(SENT.length), { conversationId: value.conversationId, statuses: (value as SentEntry).statuses });
        else if (key.startsWith(RECEIVED)) this.received.set(key.slice(RECEIVED.length), { conversationId: value.conversationId, senderUserId: (value as ReceivedEntry).senderUserId });
      }
    })();
    return this.loaded;
  }

  async noteSent(conversationId: string, messageId: string, recipientUserIds: string[]): Promise<void> {
    await this.load();
    const entry: SentEntry = { conversationId, statuses: Object.fromEntries(recipientUserIds.map((u) => [u, 'sent' as ReceiptStatus])) };
    await this.remember(this.sent, SENT, messageId, entry);
  }

  async noteReceived(conversationId: string, messageId: string, senderUserId: string): Promise<void> {
    await this.load();
    if (this.received.has(messageId)) return;
    await this.remember(this.received, RECEIVED, messageId, { conversationId, senderUserId });
  }

  /** Who sent a received message, if it is remembered. */
  async senderOf(messageId: string): Promise<ReceivedEntry | undefined> {
    await this.load();
    return this.received.get(messageId);
  }

  /** Apply a receipt; returns the messages whose status for that user moved forward. */
  async apply(conversationId: string, userId: string, status: 'delivered' | 'read', messageIds: string[]): Promise<string[]> {
    await this.load();
    const moved: string[] = [];
    for (const id of messageIds) {
      const entry = this.sent.get(id);
      const current = entry?.statuses[userId];
      if (!entry || entry.conversationId !== conversationId || current === undefined) continue;
      if (RANK[status] > RANK[current]) {
        entry.statuses[userId] = status;
        moved.push(id);
        await this.store?.put('receipts', SENT + id, { ...entry, statuses: { ...entry.statuses }, at: Date.now() });
      }
    }
    return moved;
  }

  /** Status per recipient of a message this device sent (what is loaded: call {@link load} first after a restart). */
  status(messageId: string): Record<string, ReceiptStatus> | undefined {
    const entry = this.sent.get(messageId);
    return entry && { ...entry.statuses };
  }

  private async remember<V extends SentEntry | ReceivedEntry>(map: Map<string, V>, prefix: string, id: string, value: V): Promise<void> {
    const evicted: string[] = [];
    while (map.size >= MAX_TRACKED) {
      const oldest = map.keys().next().value as string;
      map.delete(oldest);
      evicted.push(oldest);
    }
    map.set(id, value);
    if (!this.store) return;
    await this.store.transaction([
      ...evicted.map((k) => ({ type: 'delete' as const, ns: 'receipts' as const, key: prefix + k })),
      { type: 'put' as const, ns: 'receipts' as const, key: prefix + id, value: { ...value, at: Date.now() } },
    ]);
  }
}

const SENT = 's:';
const RECEIVED = 'r:';
