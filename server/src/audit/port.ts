/**
 * The audit log (HIPAA 45 CFR 164.312(b), audit controls): who (organisation, user, device) did
 * what (action and outcome), to which conversation and message ids, when, and from where (IP).
 * Never a message body, a ciphertext, a key or a token: entries are built from a fixed list of id
 * fields (see `auditFields`), so nothing else can slip in.
 *
 * Entries form one hash chain per organisation (`chain` = the organisation id; handshakes refused
 * before a token identified anyone go to the `UNAUTHENTICATED_CHAIN`). Each entry carries its
 * `index` in the chain (0, 1, 2, ... with no gaps), the SHA-256 of the previous entry's canonical
 * form (`prevHash`) and its own (`hash`), so a changed, inserted or deleted entry breaks the chain
 * where it happened, and `verifyAuditLog` says where.
 */
export interface AuditEvent {
  /** Epoch ms. */
  at: number;
  /** Socket event name, or `handshake`, `disconnect`, `admin:revoke-token`, ... */
  action: string;
  /** `ok`, or the error code the caller got. */
  outcome: string;
  orgId?: string | undefined;
  userId?: string | undefined;
  deviceId?: string | undefined;
  /** Client address as the hub saw it. */
  ip?: string | undefined;
  conversationId?: string | undefined;
  messageId?: string | undefined;
  seq?: number | undefined;
  clientMessageId?: string | undefined;
  /** The device acted on (e.g. revoked). */
  targetDeviceId?: string | undefined;
  /** Users whose keys or devices were asked for, or who were named as members. */
  targetUserIds?: string[] | undefined;
  /** Messages handed out (sync pages). */
  messageIds?: string[] | undefined;
  /** A short machine-readable note (e.g. a disconnect reason). Never free text from a client. */
  note?: string | undefined;
  /** How many more events like this one (refusals of the same kind) the window saw after the first. */
  count?: number | undefined;
}

export interface AuditEntry extends AuditEvent {
  /** Random id of the entry. */
  id: string;
  chain: string;
  index: number;
  /** SHA-256 (hex) of the previous entry's canonical form; 64 zeros for index 0. */
  prevHash: string;
  /** SHA-256 (hex) of this entry's canonical form (every field but `hash`). */
  hash: string;
}

/** Chain of events that no token identified (e.g. garbage tokens). The space keeps it out of the id space. */
export const UNAUTHENTICATED_CHAIN = 'no organisation';
export const GENESIS_HASH = '0'.repeat(64);

/** Read access to a stored chain, for verification. */
export interface AuditReader {
  chains(): Promise<string[]>;
  /** Entries with index > afterIndex, ascending by index, at most `limit`. */
  entries(chain: string, afterIndex: number, limit: number): Promise<AuditEntry[]>;
  /** The highest index ever appended to the chain, as recorded apart from the entries (detects a cut tail). */
  recordedHead(chain: string): Promise<number | undefined>;
}

/**
 * Where the hub writes audit events. `record` never throws and never waits: events are queued and
 * appended in order per chain; `flush` waits until everything recorded so far is stored.
 */
export interface AuditLog extends AuditReader {
  init(): Promise<void>;
  record(event: AuditEvent): void;
  flush(): Promise<void>;
  close(): Promise<void>;
}
