/**
 * Consult pools in the widget (issue #23): what the "Consults" views ask of the SDK
 * (`client.consults`, `client.pseudonyms`), and the widget's copy of what this device sent in a pool.
 * The SDK hands a message over only to the other devices, so every case, reply, helpful mark, summary
 * and move this device sends by name is kept here as an outgoing history item with its sealed consult
 * part, as received ones are (session.ts): the pool view threads both with `consultThreads`.
 *
 * A pseudonymous case and its asker's follow-ups are the exception: the hub delivers them to every
 * member device, the asking one included, so this device keeps the copy it receives (sender `~sealed`,
 * with `pseudonym.mine`) and no copy of its own, which would name the user.
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
  /** Post as "a verified <this specialty>" with one of this device's pseudonym tokens of it (no image then). */
  pseudonymous?: string;
}

/** Unspent pseudonym tokens on this device, per specialty and epoch. */
export interface TokenCount {
  specialty: string;
  epoch: string;
  count: number;
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
  /** Pick up the tokens the office has signed since they were asked for, then count the unspent ones. */
  tokens(): Promise<TokenCount[]>;
  /** Ask the credentialing office for a batch of tokens (they arrive once it signs them). */
  requestTokens(): Promise<{ specialty: string; count: number }>;
  /** Tokens asked for that the office has not signed yet (call after `tokens()`). */
  waitingTokens(): Promise<number>;
  /**
   * Post a case; `onProgress` hears an image's upload (fraction done). The attachment as sealed, if any.
   * A pseudonymous case is not kept here: this device shows the copy the hub delivers to it.
   */
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
  /** Cases this device asked pseudonymously in this session (see {@link ownEcho}). */
  private readonly ownCases = new Set<string>();

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

  async tokens(): Promise<TokenCount[]> {
    await this.deps.client.pseudonyms.collect();
    return this.deps.client.pseudonyms.available();
  }

  async waitingTokens(): Promise<number> {
    return (await this.deps.client.pseudonyms.pending()).reduce((n, r) => n + r.count, 0);
  }

  async requestTokens(): Promise<{ specialty: string; count: number }> {
    const { specialty, count } = await this.deps.client.pseudonyms.request();
    return { specialty, count };
  }

  async postCase(poolId: string, draft: CaseDraft, onProgress: (done: number) => void): Promise<AttachmentDescriptor | undefined> {
    const { question, ageBand, sex, image } = draft;
    if (draft.pseudonymous !== undefined) {
      const sent = await this.deps.client.consults.postCase(poolId, { question, ageBand, sex }, { pseudonymous: { specialty: draft.pseudonymous } });
      this.ownCases.add(sent.messageId);
      // The hub's copy may already be here, opened before the SDK knew the case was this device's.
      const echoed = this.deps.state.items.get(`${poolId}\n${sent.messageId}`);
      const own = echoed && this.ownEcho(echoed);
      if (own && own !== echoed) this.deps.putItem(own);
      return undefined;
    }
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
    await this.followUp(poolId, caseId, () => this.deps.client.consults.reply(poolId, caseId, text), text, { type: 'reply', caseId });
  }

  async markHelpful(poolId: string, caseId: string, replyId: string): Promise<void> {
    await this.followUp(poolId, caseId, () => this.deps.client.consults.markHelpful(poolId, caseId, replyId), '', { type: 'helpful', caseId, replyId });
  }

  async close(poolId: string, caseId: string, summary: string): Promise<void> {
    await this.followUp(poolId, caseId, () => this.deps.client.consults.close(poolId, caseId, summary), summary, { type: 'close', caseId });
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

  /**
   * A received pool message as this device keeps it. The SDK tells the asking device its own
   * pseudonymous posts by `pseudonym.mine`, from the case's key it stores once the hub accepted the
   * case; the hub's copy of the case can be opened before that. A case this session posted (and its
   * follow-ups) is then marked as this device's own here, so the asker's controls show.
   */
  ownEcho(item: HistoryItem): HistoryItem {
    const p = item.pseudonym;
    const caseId = item.consult?.type === 'case' ? item.messageId : item.consult?.caseId;
    if (!p || p.mine || caseId === undefined || !this.ownCases.has(caseId)) return item;
    return { ...item, outgoing: true, read: true, status: 'sent', pseudonym: { ...p, mine: true } };
  }

  /** The asker's follow-up (or anyone's reply): kept as sent by name, except under this device's own pseudonymous case (the hub's copy shows). */
  private async followUp(poolId: string, caseId: string, send: () => Promise<SendResult>, text: string, consult: ConsultPart): Promise<void> {
    const pseudonymous = await this.deps.client.consults.askedPseudonymously(caseId);
    const sent = await send();
    if (!pseudonymous) this.keep(poolId, sent, text, consult);
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
