/**
 * What the widget shows, kept in this browser's IndexedDB next to the device's keys: the SDK hands
 * each decrypted message over once, so the widget keeps its own copy to show it again after a
 * reload. Like the device store, this is the origin's storage, unencrypted at rest.
 */
import type { Conversation } from '@curbside/client-sdk';

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
}

const ITEMS = 'items';
const CONVERSATIONS = 'conversations';

function done<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error ?? new Error('IndexedDB request failed'));
  });
}

export class HistoryDb {
  private constructor(private readonly db: IDBDatabase) {
    db.onversionchange = () => db.close();
  }

  static async open(name: string): Promise<HistoryDb> {
    const request = indexedDB.open(`curbside-widget-history:${name}`, 1);
    request.onupgradeneeded = () => {
      const db = request.result;
      if (!db.objectStoreNames.contains(ITEMS)) db.createObjectStore(ITEMS, { keyPath: 'key' });
      if (!db.objectStoreNames.contains(CONVERSATIONS)) db.createObjectStore(CONVERSATIONS, { keyPath: 'id' });
    };
    return new HistoryDb(await done(request));
  }

  async items(): Promise<HistoryItem[]> {
    return done(this.db.transaction(ITEMS).objectStore(ITEMS).getAll() as IDBRequest<HistoryItem[]>);
  }

  async conversations(): Promise<Conversation[]> {
    return done(this.db.transaction(CONVERSATIONS).objectStore(CONVERSATIONS).getAll() as IDBRequest<Conversation[]>);
  }

  async putItems(items: HistoryItem[]): Promise<void> {
    if (items.length === 0) return;
    const tx = this.db.transaction(ITEMS, 'readwrite');
    for (const item of items) tx.objectStore(ITEMS).put(item);
    await txDone(tx);
  }

  async deleteItem(key: string): Promise<void> {
    const tx = this.db.transaction(ITEMS, 'readwrite');
    tx.objectStore(ITEMS).delete(key);
    await txDone(tx);
  }

  async putConversations(conversations: Conversation[]): Promise<void> {
    if (conversations.length === 0) return;
    const tx = this.db.transaction(CONVERSATIONS, 'readwrite');
    for (const c of conversations) tx.objectStore(CONVERSATIONS).put(c);
    await txDone(tx);
  }

  close(): void {
    this.db.close();
  }
}

function txDone(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error ?? new Error('IndexedDB transaction failed'));
    tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
  });
}
