/**
 * Consult pools in the widget (issue #23): what the "Consults" views ask of the SDK
 * (`client.consults`), and the widget's copy of what this device sent in a pool. The SDK hands a
 * message over only to the other devices, so every case, reply, helpful mark, summary and move this
 * device sends is kept here as an outgoing history item with its sealed consult part, as received
 * ones are (session.ts): the pool view threads both with `consultThreads`.
 */
import type { AgeBand, AttachmentDescriptor, ConsultPart, ConsultPool, CurbsideClient, PoolSummary, SendResult, Sex } from '@curbside/client-sdk';
import type { HistoryItem } from './history.js';
import type { ChatState } from './state.js';

/** A case as the "Post a case" form gives it. */
export interface CaseDraft {
  question: string;
  ageBand: AgeBand;
  sex: Sex;
  /** An image to attach: de-identified on this device, then encrypted. */
  image?: File;
}

/** What the consult views may do (the element hands them the session's, while there is one). */
export interface ConsultActions {
  search(query: string): Promise<PoolSummary[]>;
  /** The pool as this device verified it from its signed log; kept in the state for the views. */
  pool(poolId: string): Promise<ConsultPool>;
  /** Open a pool (takes a verified credential); this user moderates it. */
  create(topic: string): Promise<string>;
  /** Join a pool (the hub refuses without a verified credential). */
  join(poolId: string): Promise<void>;
  /** Post a case; `onProgress` hears an image's upload (fraction done). The attachment as sealed, if any. */
  postCase(poolId: string, draft: CaseDraft, onProgress: (done: number) => void): Promise<AttachmentDescriptor | undefined>;
  reply(poolId: string, caseId: string, text: string): Promise<void>;
  markHelpful(poolId: string, caseId: string, replyId: string): Promise<void>;
  close(poolId: string, caseId: string, summary: string): Promise<void>;
  hide(poolId: string, caseId: string): Promise<void>;
  /** Take a case to a 1:1 with a responder, and open that conversation. */
  moveToPrivate(poolId: string, c: { caseId: string; question: string }, userId: string): Promise<void>;
}

export interface ConsultSessionDeps {
  client: CurbsideClient;
  state: ChatState;
  /** Keep an item and show it. */
  putItem(item: HistoryItem): void;
  /** Fetch the conversation list again, then open this conversation. */
  openConversation(conversationId: string): Promise<void>;
  /** A pool changed (its record as verified): redraw what shows it. */
  poolChanged(poolId: string): void;
}

export class ConsultSession implements ConsultActions {
  constructor(private readonly deps: ConsultSessionDeps) {}

  search(query: string): Promise<PoolSummary[]> {
    return this.deps.client.consults.search(query.trim() || undefined);
  }

  async pool(poolId: string): Promise<ConsultPool> {
    const pool = await this.deps.client.consults.pool(poolId);
    this.deps.state.pools.set(poolId, pool);
    this.deps.state.teamTitles.set(poolId, this.deps.state.teamTitles.get(poolId) ?? pool.topic);
    this.deps.poolChanged(poolId);
    return pool;
  }

  async create(topic: string): Promise<string> {
    const { poolId } = await this.deps.client.consults.create(topic);
    await this.pool(poolId);
    return poolId;
  }

  async join(poolId: string): Promise<void> {
    await this.deps.client.consults.join(poolId);
    await this.pool(poolId);
  }

  async postCase(poolId: string, draft: CaseDraft, onProgress: (done: number) => void): Promise<AttachmentDescriptor | undefined> {
    const { question, ageBand, sex, image } = draft;
    const sent = await this.deps.client.consults.postCase(poolId, {
      question,
      ageBand,
      sex,
      ...(image
        ? {
            image: {
              input: image,
              options: { name: image.name || 'image', mediaType: image.type || 'application/octet-stream', onProgress: (p) => onProgress(p.phase === 'upload' && p.total ? p.bytes / p.total : 0) },
            },
          }
        : {}),
    });
    this.keep(poolId, sent, question, { type: 'case', ageBand, sex }, sent.attachment);
    return sent.attachment;
  }

  async reply(poolId: string, caseId: string, text: string): Promise<void> {
    this.keep(poolId, await this.deps.client.consults.reply(poolId, caseId, text), text, { type: 'reply', caseId });
  }

  async markHelpful(poolId: string, caseId: string, replyId: string): Promise<void> {
    this.keep(poolId, await this.deps.client.consults.markHelpful(poolId, caseId, replyId), '', { type: 'helpful', caseId, replyId });
  }

  async close(poolId: string, caseId: string, summary: string): Promise<void> {
    this.keep(poolId, await this.deps.client.consults.close(poolId, caseId, summary), summary, { type: 'close', caseId });
  }

  async hide(poolId: string, caseId: string): Promise<void> {
    await this.deps.client.consults.hide(poolId, caseId);
    await this.pool(poolId);
  }

  async moveToPrivate(poolId: string, c: { caseId: string; question: string }, userId: string): Promise<void> {
    const moved = await this.deps.client.consults.moveToPrivate(poolId, c, userId);
    const part: ConsultPart = { type: 'moved', caseId: c.caseId, withUserId: userId };
    this.keep(moved.conversationId, moved.privateMessage, c.question, part);
    this.keep(poolId, moved.poolMessage, '', part);
    await this.deps.openConversation(moved.conversationId);
  }

  /** Keep what this device sent as an outgoing item (the SDK echoes it to the user's other devices only). */
  private keep(conversationId: string, sent: SendResult, text: string, consult: ConsultPart, attachment?: AttachmentDescriptor): void {
    this.deps.putItem({
      key: `${conversationId}\n${sent.messageId}`,
      conversationId,
      localId: sent.messageId,
      kind: 'message',
      messageId: sent.messageId,
      seq: sent.seq,
      senderUserId: this.deps.state.me.sub ?? '',
      text,
      outgoing: true,
      at: sent.sentAt,
      read: true,
      status: 'sent',
      consult,
      ...(attachment ? { attachment } : {}),
    });
  }
}
