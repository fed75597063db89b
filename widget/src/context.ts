/**
 * What views are given: the state to read, the SDK client (when there is one), and the actions they
 * may trigger. Views import this, never the element or the session, so imports run one way:
 * element → session, views → context, state.
 */
import type { Conversation, CurbsideClient } from '@curbside/client-sdk';
import type { ConsultActions } from './consult-session.js';
import type { HistoryItem } from './history.js';
import type { ChatState } from './state.js';

export interface Actions {
  /** Open a conversation's thread. */
  open(conversationId: string): void;
  /** Back from a thread to the list (narrow hosts). */
  back(): void;
  send(conversationId: string, text: string, retryOf?: HistoryItem, priority?: 'urgent'): void;
  /** Encrypt and send a file (picked, dropped or pasted) with an optional caption. */
  sendFile(conversationId: string, file: File, caption: string): void;
  /** Download, decrypt and check a message's file: an image opens full size, any other file is saved. */
  openAttachment(item: HistoryItem): void;
  /** Acknowledge the urgent message at `seq` ("I'm on it"). */
  acknowledge(conversationId: string, seq: number): void;
  /** One person and no title: a 1:1 conversation; otherwise a care team. Opens it. */
  createConversation(userIds: string[], title: string): Promise<void>;
  /** Open this user's thread with an on-call role (created on first use) and show it. */
  pageRole(roleId: string, name: string): Promise<void>;
  /** Take an on-call role now ("I'm taking it"). */
  takeRole(roleId: string): Promise<void>;
  /** The user is (or stopped) typing in the open conversation. */
  typing(typing: boolean): void;
  showSafetyNumber(userId: string): void;
  showMembers(c: Conversation): void;
  /** Show a consult pool's cases (the pool view) instead of a conversation. */
  openPool(poolId: string): void;
}

export interface ViewContext {
  readonly state: ChatState;
  /** Unique per element: a prefix for ids (aria-labelledby and friends). */
  readonly uid: string;
  readonly shadow: ShadowRoot;
  readonly actions: Actions;
  client(): CurbsideClient | undefined;
  /** Consult pools through the session (undefined while there is none). */
  consults(): ConsultActions | undefined;
  emit(type: string, detail: Record<string, unknown>): void;
}

/** The element focused inside the widget's shadow root. */
export function activeElement(ctx: ViewContext): HTMLElement | undefined {
  return (ctx.shadow.activeElement as HTMLElement | null) ?? undefined;
}
