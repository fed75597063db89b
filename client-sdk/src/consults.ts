import {
  ErrorCode,
  Limits,
  teamRoleOf,
  type AgeBand,
  type AttachmentDescriptor,
  type ConsultPart,
  type PoolSummary,
  type SendResult,
  type Sex,
  type TeamRole,
  type TeamState,
} from '@curbside/shared';
import type { AttachmentInput, AttachmentSendOptions, Attachments } from './attachments/attachments.js';
import type { SealedExtras } from './e2ee/message-crypto.js';
import type { SecureMessenger } from './e2ee/secure-messenger.js';
import type { ChatMessage } from './e2ee/types.js';
import { CurbsideError, isCurbsideError } from './errors.js';
import type { Pseudonyms } from './pseudonyms.js';
import type { PseudonymInfo, PseudonymousPosts } from './pseudonymous-posts.js';
import type { HubApi } from './hub/api.js';

export type { AgeBand, ConsultPart, PoolSummary, Sex };
/** The age bands a case may give (never a date of birth), and the sexes: the choices to offer the asker. */
export { AGE_BANDS, SEXES } from '@curbside/shared';

/** A consult pool as this device verified it from its signed log. */
export interface ConsultPool {
  poolId: string;
  /** "Dermatology curbside". */
  topic: string;
  /** Its members; `owner` and `admin` are its moderators. */
  members: Record<string, TeamRole>;
  /** This user is a member. */
  member: boolean;
  /** Cases (message ids) its moderators hid for every member. */
  hidden: string[];
}

/** A new case: the question, an age band and a sex (never a name), and optionally one image. */
export interface NewCase {
  question: string;
  ageBand: AgeBand;
  sex: Sex;
  /** A clinical image: de-identified on this device before it is encrypted (see `client.attachments.send`). */
  image?: { input: AttachmentInput; options?: Omit<AttachmentSendOptions, 'caption' | 'consult'> };
}

/** A reply under a case. */
export interface ConsultReply {
  messageId: string;
  /** `~sealed` for the pseudonymous asker's own reply (see `pseudonym`). */
  senderUserId: string;
  /** The reply is the pseudonymous asker's (signed by the case's one-time key). */
  pseudonym?: PseudonymInfo;
  text: string;
  sentAt: number;
  /** The asker marked it helpful. */
  helpful: boolean;
  attachment?: AttachmentDescriptor;
}

/** A case with everything said under it, as {@link consultThreads} assembles it. */
export interface ConsultCase {
  caseId: string;
  conversationId: string;
  /** `~sealed` for a pseudonymous case: then `pseudonym` says "a verified <specialty>", and nothing says who. */
  askerUserId: string;
  /** A pseudonymous case (posted with a pseudonym token over sealed sender). */
  pseudonym?: PseudonymInfo;
  question: string;
  ageBand: AgeBand;
  sex: Sex;
  sentAt: number;
  attachment?: AttachmentDescriptor;
  replies: ConsultReply[];
  /** The asker closed it with this summary. */
  closed?: { summary: string; at: number };
  /** The asker took it to a private conversation with this clinician. */
  movedTo?: { userId: string; at: number };
}

/**
 * Group a pool's messages into cases: each case with its replies (in order), the asker's "helpful"
 * marks, the closing summary and a move to a private conversation. Only the asker marks, closes or
 * moves their case; replies to cases not among `messages`, and cases in `hidden` (a moderator hid them),
 * are left out. Pure: call it with the messages the app kept (`message` events of the pool).
 */
export function consultThreads(messages: readonly ChatMessage[], hidden: Iterable<string> = []): ConsultCase[] {
  const hiddenIds = new Set(hidden);
  const cases = new Map<string, ConsultCase>();
  // Who asked: a user, or for a pseudonymous case its one-time key (the asker's follow-ups carry the same).
  const askers = new Map<string, string>();
  const speaker = (m: ChatMessage) => (m.pseudonym ? `~key:${m.pseudonym.key}` : m.senderUserId);
  const sorted = [...messages].sort((a, b) => a.seq - b.seq);
  for (const m of sorted) {
    if (m.consult?.type !== 'case' || hiddenIds.has(m.messageId) || cases.has(m.messageId)) continue;
    askers.set(m.messageId, speaker(m));
    cases.set(m.messageId, {
      caseId: m.messageId,
      conversationId: m.conversationId,
      askerUserId: m.senderUserId,
      ...(m.pseudonym ? { pseudonym: m.pseudonym } : {}),
      question: m.text,
      ageBand: m.consult.ageBand,
      sex: m.consult.sex,
      sentAt: m.sentAt,
      ...(m.attachment ? { attachment: m.attachment } : {}),
      replies: [],
    });
  }
  const helpful: Array<{ caseId: string; replyId: string }> = [];
  for (const m of sorted) {
    const part = m.consult;
    if (!part || part.type === 'case') continue;
    const c = cases.get(part.caseId);
    if (!c || c.conversationId !== m.conversationId) continue;
    // A pseudonymous post speaks only under the case it follows (its key is that case's, or it counts for nothing).
    const byAsker = speaker(m) === askers.get(part.caseId);
    if (m.pseudonym && !byAsker) continue;
    if (part.type === 'reply') {
      c.replies.push({
        messageId: m.messageId,
        senderUserId: m.senderUserId,
        ...(m.pseudonym ? { pseudonym: m.pseudonym } : {}),
        text: m.text,
        sentAt: m.sentAt,
        helpful: false,
        ...(m.attachment ? { attachment: m.attachment } : {}),
      });
      continue;
    }
    // Only the asker marks, closes or moves their own case.
    if (!byAsker) continue;
    if (part.type === 'helpful') helpful.push({ caseId: part.caseId, replyId: part.replyId });
    else if (part.type === 'close') c.closed ??= { summary: m.text, at: m.sentAt };
    else c.movedTo ??= { userId: part.withUserId, at: m.sentAt };
  }
  for (const h of helpful) {
    const reply = cases.get(h.caseId)?.replies.find((r) => r.messageId === h.replyId);
    if (reply) reply.helpful = true;
  }
  return [...cases.values()];
}

/**
 * Consult pools (`client.consults`): "Dermatology curbside", "Paediatric ID" — ask verified peers
 * beyond your own team "has anyone seen this?". A pool is a care team whose members joined themselves
 * with a verified credential (the hub refuses anyone else; check members with
 * `client.credentials.check`), moderated by its owner and admins. Cases, replies, helpful marks and
 * summaries are end-to-end encrypted to the pool's members of the moment (sender keys, as a team's
 * messages): the hub stores ciphertext and the pool's topic, nothing of the case. A member who joins
 * later reads what is posted from then on.
 *
 * @example
 * ```ts
 * const [derm] = await client.consults.search('dermatology');
 * await client.consults.join(derm.poolId);
 * const ack = await client.consults.postCase(derm.poolId, { question: 'Annular plaque, 3 weeks, not itchy. Thoughts?', ageBand: '30-39', sex: 'female', image: { input: file } });
 * client.on('message', (m) => { if (m.conversationId === derm.poolId) kept.push(m); render(consultThreads(kept)); });
 * ```
 */
export class Consults {
  /** @internal */
  constructor(
    private readonly deps: {
      messenger: SecureMessenger;
      api: HubApi;
      attachments: Attachments;
      sendSealed: (conversationId: string, text: string, extras: SealedExtras) => Promise<SendResult>;
      self: () => string;
      pseudonyms: Pseudonyms;
      pseudonymous: PseudonymousPosts;
    },
  ) {}

  /**
   * Open a consult pool; this user owns and moderates it (add moderators with
   * `client.teams.setRole(poolId, userId, 'admin')`). Takes a verified credential on this device.
   * @param topic - "Dermatology curbside" (1 to 100 characters): visible to the hub, so colleagues find it.
   * @param options.members - clinicians the moderator enrols at once (each must hold a verified
   *   credential); others join themselves ({@link join}) or are added later (`client.teams.addMember`).
   * @throws CurbsideError FORBIDDEN (this device, or a listed member, has no verified credential), INVALID_STATEMENT / INVALID_PAYLOAD
   */
  async create(topic: string, options: { description?: string; members?: string[] } = {}): Promise<{ poolId: string; seq: number }> {
    const name = topic.trim();
    if (name.length === 0 || name.length > Limits.MAX_POOL_TOPIC_LENGTH) throw new CurbsideError(ErrorCode.INVALID_PAYLOAD, `A pool's topic is 1 to ${Limits.MAX_POOL_TOPIC_LENGTH} characters`);
    const details = { title: name, ...(options.description !== undefined ? { description: options.description } : {}) };
    const { teamId, seq } = await this.deps.messenger.careTeams.create(details, (options.members ?? []).map((userId) => ({ userId })), { poolTopic: name });
    return { poolId: teamId, seq };
  }

  /** The organisation's pools whose topic contains every word of `query` (all, without one), as the hub lists them. */
  search(query?: string): Promise<PoolSummary[]> {
    return this.deps.api.poolSearch(query);
  }

  /**
   * A pool as this device verifies it: its own record if a member, else the pool's log from the hub,
   * every statement checked (signature under the actor's listed key, the shared rules).
   * @throws CurbsideError NOT_FOUND (no such pool), BAD_SIGNATURE / INVALID_STATEMENT (the log does not verify)
   */
  async pool(poolId: string): Promise<ConsultPool> {
    const state = await this.verified(poolId);
    return { poolId, topic: state.pool!.topic, members: { ...state.members }, member: teamRoleOf(state.members, this.deps.self()) !== undefined, hidden: [...state.pool!.hidden] };
  }

  /**
   * Join a pool: verify its log, then sign a `join` statement. The hub accepts it only when this
   * device holds a verified credential (`client.credentials`); from then on, cases posted reach it.
   * @throws CurbsideError FORBIDDEN (no verified credential), NOT_FOUND, CONFLICT (the pool kept changing)
   */
  async join(poolId: string): Promise<{ seq: number }> {
    for (let attempt = 0; ; attempt++) {
      const state = await this.verified(poolId);
      if (teamRoleOf(state.members, this.deps.self())) throw new CurbsideError(ErrorCode.CONFLICT, 'Already a member of this pool', { poolId });
      try {
        const { seq } = await this.deps.messenger.careTeams.join(poolId, state);
        return { seq };
      } catch (e) {
        // Someone joined first: replay the log again and sign on the new head.
        if (!isCurbsideError(e) || e.code !== ErrorCode.CONFLICT || attempt >= 4) throw e;
        await new Promise((r) => setTimeout(r, 50 + Math.random() * 200));
      }
    }
  }

  /** Leave a pool (a member removes themselves). */
  async leave(poolId: string): Promise<void> {
    await this.deps.messenger.careTeams.change(poolId, 'remove', this.deps.self());
  }

  /**
   * Post a case to a pool: the question as the message text, the age band and sex sealed with it, and
   * an image (de-identified here first) if given. The case's id is the result's `messageId`.
   *
   * With `pseudonymous`, the case goes out as "a verified <specialty>": it spends one of this device's
   * pseudonym tokens (`client.pseudonyms`) and is sent over sealed sender, without this user's access
   * token, so neither the members nor the hub's records learn who asked. Its follow-ups (`reply`,
   * `markHelpful`, `close` from this device) are signed by the case's one-time key and sent the same
   * way. Not with an image yet (its upload would name the asker), nor moved to a private conversation.
   * @returns the hub's acknowledgement and, with an image, the attachment as it was sealed (its
   *   thumbnail and `removedMetadata`: what de-identification took out, to show the asker)
   * @throws CurbsideError FORBIDDEN (not a member; pseudonymous without a token left: `details.reason`
   *   `no-token`), INVALID_PAYLOAD, PSEUDONYM_SPENT, and what `client.attachments.send` throws
   */
  async postCase(poolId: string, c: NewCase, options: { pseudonymous?: boolean | { specialty: string } } = {}): Promise<SendResult & { attachment?: AttachmentDescriptor }> {
    const consult: ConsultPart = { type: 'case', ageBand: c.ageBand, sex: c.sex };
    await this.requireMember(poolId);
    if (options.pseudonymous) {
      if (c.image) throw new CurbsideError(ErrorCode.INVALID_PAYLOAD, 'A pseudonymous case takes no image yet: its upload would name the asker');
      const handle = await this.deps.pseudonyms.take(typeof options.pseudonymous === 'object' ? options.pseudonymous.specialty : undefined);
      if (!handle) throw new CurbsideError(ErrorCode.FORBIDDEN, 'No pseudonym token left on this device: ask for more (client.pseudonyms.request)', { reason: 'no-token' });
      const ack = await this.deps.pseudonymous.post(poolId, c.question, consult, { kind: 'case', token: handle.token, sign: handle.sign });
      await handle.keepForCase(ack.messageId);
      return ack;
    }
    if (c.image) {
      const { result, attachment } = await this.deps.attachments.send(poolId, c.image.input, { ...c.image.options, caption: c.question, consult });
      return { ...result, attachment };
    }
    return this.deps.sendSealed(poolId, c.question, { consult });
  }

  /** Reply under a case (under this device's own pseudonymous case, as its asker: still pseudonymous). */
  async reply(poolId: string, caseId: string, text: string): Promise<SendResult> {
    await this.requireMember(poolId);
    return this.asAsker(poolId, caseId, text, { type: 'reply', caseId });
  }

  /** The asker marks a reply helpful (others' marks are ignored by every reader). */
  markHelpful(poolId: string, caseId: string, replyId: string): Promise<SendResult> {
    return this.asAsker(poolId, caseId, '', { type: 'helpful', caseId, replyId });
  }

  /** The asker closes their case with a summary for the pool. */
  close(poolId: string, caseId: string, summary: string): Promise<SendResult> {
    if (summary.length > Limits.MAX_CONSULT_SUMMARY_LENGTH) throw new CurbsideError(ErrorCode.INVALID_PAYLOAD, `A summary is at most ${Limits.MAX_CONSULT_SUMMARY_LENGTH} characters`);
    return this.asAsker(poolId, caseId, summary, { type: 'close', caseId });
  }

  /** Whether this device asked `caseId` pseudonymously (its follow-ups then stay pseudonymous). */
  async askedPseudonymously(caseId: string): Promise<boolean> {
    return (await this.deps.pseudonyms.ownCase(caseId)) !== undefined;
  }

  /** A follow-up under a case: by the case's one-time key when this device asked it pseudonymously, else as this user. */
  private async asAsker(poolId: string, caseId: string, text: string, consult: ConsultPart): Promise<SendResult> {
    const own = await this.deps.pseudonyms.ownCase(caseId);
    if (!own) return this.deps.sendSealed(poolId, text, { consult });
    return this.deps.pseudonymous.post(poolId, text, consult, { kind: 'follow-up', token: own.token, sign: own.sign });
  }

  /**
   * A moderator (the pool's owner or an admin) hides a case for every member: a signed statement in
   * the pool's log, which every member's device verifies before hiding it.
   * @throws CurbsideError INVALID_STATEMENT (not a moderator)
   */
  async hide(poolId: string, caseId: string): Promise<void> {
    await this.deps.messenger.careTeams.signed(poolId, { op: 'hide', messageId: caseId });
  }

  /**
   * Take a case to a private conversation with one responder: opens (or finds) the 1:1 conversation,
   * sends the case's question there, and tells the pool the case moved.
   * @returns the private conversation's id, the question's acknowledgement there (`privateMessage`) and
   *   that of the note in the pool (`poolMessage`), for an app that keeps its own copy of what it sent
   */
  async moveToPrivate(
    poolId: string,
    consult: Pick<ConsultCase, 'caseId' | 'question'>,
    userId: string,
  ): Promise<{ conversationId: string; privateMessage: SendResult; poolMessage: SendResult }> {
    if (await this.askedPseudonymously(consult.caseId)) throw new CurbsideError(ErrorCode.INVALID_PAYLOAD, 'A pseudonymous case cannot move to a private conversation: it would say who asked');
    const direct = await this.deps.api.createConversation({ kind: 'direct', peerUserId: userId });
    const privateMessage = await this.deps.sendSealed(direct.id, consult.question, { consult: { type: 'moved', caseId: consult.caseId, withUserId: userId } });
    const poolMessage = await this.deps.sendSealed(poolId, '', { consult: { type: 'moved', caseId: consult.caseId, withUserId: userId } });
    return { conversationId: direct.id, privateMessage, poolMessage };
  }

  private async verified(poolId: string): Promise<TeamState> {
    const own = await this.deps.messenger.careTeams.state(poolId);
    const state = await this.deps.messenger.replayTeamLog(poolId, own, (fromIndex) => this.deps.api.poolLog(poolId, fromIndex));
    if (!state?.pool) throw new CurbsideError(ErrorCode.NOT_FOUND, 'No such consult pool', { poolId });
    return state;
  }

  private async requireMember(poolId: string): Promise<void> {
    const own = await this.deps.messenger.careTeams.state(poolId);
    if (!own?.pool || !teamRoleOf(own.members, this.deps.self())) throw new CurbsideError(ErrorCode.FORBIDDEN, 'Join this pool before posting in it', { poolId });
  }
}
