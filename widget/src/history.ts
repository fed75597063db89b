/**
 * What the widget shows, kept in this browser's IndexedDB next to the device's keys: the SDK hands
 * each decrypted message over once, so the widget keeps its own copy to show it again after a
 * reload. Like the device store, this is the origin's storage, unencrypted at rest.
 */
import { openDB, type DBSchema, type IDBPDatabase } from 'idb';
import type { AttachmentDescriptor, ConsultPart, Conversation, PseudonymInfo } from '@curbside/client-sdk';

export type ItemStatus = 'sending' | 'sent' | 'delivered' | 'read' | 'failed';

/** One line of a thread: a message, a "not available to you" marker, or a decryption problem. */
export interface HistoryItem {
  /** `${conversationId}\n${localId}` */
  key: string;
  conversationId: string;
  /** The hub's message id, or a local id while a send is in flight. */
  localId: string;
  kind: 'message' | 'unavailable' | 'problem';
  messageId?: string;
  seq?: number;
  senderUserId: string;
  text: string;
  outgoing: boolean;
  /** Milliseconds since the epoch. */
  at: number;
  status?: ItemStatus;
  /** Per-recipient statuses of an outgoing message (`sent`/`delivered`/`read`). */
  recipients?: Record<string, 'sent' | 'delivered' | 'read'>;
  read: boolean;
  reason?: string;
  /** Urgent or emergent (an alert was raised with it); absent for routine messages. */
  priority?: 'urgent' | 'emergent';
  /** A file sent with the message (`text` is its caption), as its sender sealed it. */
  attachment?: AttachmentDescriptor;
  /** In a consult pool: what the message is in a consult (a case, a reply, a helpful mark…), as its sender sealed it. */
  consult?: ConsultPart;
  /**
   * A pseudonymous consult post (sent over sealed sender): "a verified <specialty>", and `mine` on the
   * device that asked the case. `senderUserId` is then the reserved `~sealed`: no item names the poster.
   */
  pseudonym?: PseudonymInfo;
  /** An outgoing file before its upload finished: what the user picked. */
  pendingFile?: { name: string; size: number; mediaType: string };
  /**
   * An outgoing image sent with its metadata (the SDK could not remove it: HEIC, AVIF, GIF, TIFF, or too
   * large): the warning shown on it, in plain words.
   */
  metadataWarning?: string;
  /** An upload or download under way (fraction done), or what made it fail. */
  transfer?: { phase: 'upload' | 'download'; done: number } | { failed: string };
}

interface HistorySchema extends DBSchema {
  items: { key: string; value: HistoryItem };
  conversations: { key: string; value: Conversation };
}

export class HistoryDb {
  private constructor(private readonly db: IDBPDatabase<HistorySchema>) {}

  static async open(name: string): Promise<HistoryDb> {
    const db = await openDB<HistorySchema>(`curbside-widget-history:${name}`, 1, {
      upgrade(db) {
        if (!db.objectStoreNames.contains('items')) db.createObjectStore('items', { keyPath: 'key' });
        if (!db.objectStoreNames.contains('conversations')) db.createObjectStore('conversations', { keyPath: 'id' });
      },
      // Another tab deleting or upgrading the database: step aside rather than block it.
      blocking() {
        db.close();
      },
    });
    return new HistoryDb(db);
  }

  items(): Promise<HistoryItem[]> {
    return this.db.getAll('items');
  }

  conversations(): Promise<Conversation[]> {
    return this.db.getAll('conversations');
  }

  async putItems(items: HistoryItem[]): Promise<void> {
    if (items.length === 0) return;
    const tx = this.db.transaction('items', 'readwrite');
    await Promise.all([...items.map((item) => tx.store.put(item)), tx.done]);
  }

  async deleteItem(key: string): Promise<void> {
    await this.db.delete('items', key);
  }

  async putConversations(conversations: Conversation[]): Promise<void> {
    if (conversations.length === 0) return;
    const tx = this.db.transaction('conversations', 'readwrite');
    await Promise.all([...conversations.map((c) => tx.store.put(c)), tx.done]);
  }

  close(): void {
    this.db.close();
  }
}
