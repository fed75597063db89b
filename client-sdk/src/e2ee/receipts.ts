/** Per-recipient status of a message this user sent. `read` implies `delivered`. */
export type ReceiptStatus = 'sent' | 'delivered' | 'read';

/** A receipt as the app sees it. */
export interface Receipt {
  conversationId: string;
  messageId: string;
  /** Who received or read it, and on which device. */
  userId: string;
  deviceId: string;
  status: 'delivered' | 'read';
}

const RANK: Record<ReceiptStatus, number> = { sent: 0, delivered: 1, read: 2 };
/** Messages remembered per direction; the oldest are forgotten first. */
const MAX_TRACKED = 10_000;

/**
 * Delivery and read state, kept in memory: statuses of what this device sent, and who sent what it
 * received (so `markRead` knows where to send the receipt). Receipts themselves travel encrypted.
 */
export class ReceiptBook {
  private readonly sent = new Map<string, { conversationId: string; statuses: Map<string, ReceiptStatus> }>();
  private readonly received = new Map<string, { conversationId: string; senderUserId: string }>();

  noteSent(conversationId: string, messageId: string, recipientUserIds: string[]): void {
    bounded(this.sent).set(messageId, { conversationId, statuses: new Map(recipientUserIds.map((u) => [u, 'sent' as ReceiptStatus])) });
  }

  noteReceived(conversationId: string, messageId: string, senderUserId: string): void {
    bounded(this.received).set(messageId, { conversationId, senderUserId });
  }

  senderOf(messageId: string): { conversationId: string; senderUserId: string } | undefined {
    return this.received.get(messageId);
  }

  /** Apply a receipt; returns the messages whose status for that user moved forward. */
  apply(conversationId: string, userId: string, status: 'delivered' | 'read', messageIds: string[]): string[] {
    const moved: string[] = [];
    for (const id of messageIds) {
      const entry = this.sent.get(id);
      if (!entry || entry.conversationId !== conversationId || !entry.statuses.has(userId)) continue;
      if (RANK[status] > RANK[entry.statuses.get(userId)!]) {
        entry.statuses.set(userId, status);
        moved.push(id);
      }
    }
    return moved;
  }

  status(messageId: string): Record<string, ReceiptStatus> | undefined {
    const entry = this.sent.get(messageId);
    return entry && Object.fromEntries(entry.statuses);
  }
}

function bounded<K, V>(map: Map<K, V>): Map<K, V> {
  while (map.size >= MAX_TRACKED) map.delete(map.keys().next().value as K);
  return map;
}
