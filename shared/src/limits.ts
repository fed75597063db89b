/**
 * Size and count limits of the wire protocol. The hub enforces them with the schemas in
 * `schemas.ts`; the SDK checks them before sending so an app gets a typed error locally.
 */
export const Limits = {
  /** Largest opaque ciphertext in one envelope. Clinical images travel as encrypted attachments, not here. */
  MAX_CIPHERTEXT_BYTES: 64 * 1024,
  /** Largest per-device ciphertext in an envelope (it wraps a message key, or a short message). */
  MAX_DEVICE_CIPHERTEXT_BYTES: 16 * 1024,
  /** Devices one envelope may address. */
  MAX_RECIPIENT_DEVICES: 500,
  /** Largest share of a sealed post (an anonymous sealed box around a message key: sealed-posts.ts). */
  MAX_SEALED_SHARE_BYTES: 256,
  /** One-time prekeys in one upload (Signal's batch size). */
  MAX_PREKEY_BATCH: 100,
  /** One-time prekeys the hub keeps per device; uploads beyond this are refused. */
  MAX_STORED_PREKEYS: 500,
  /** Users whose devices one `devices:list` or `keys:claim` may ask about. */
  MAX_KEY_QUERY_USERS: 100,
  /** socket.io `maxHttpBufferSize`: a frame above this closes the connection before any handler runs. */
  MAX_FRAME_BYTES: 256 * 1024,
  /** Ids (user, device, organisation, conversation, message) are short opaque strings. */
  MAX_ID_LENGTH: 128,
  /** Members named when a conversation is created. */
  MAX_CONVERSATION_MEMBERS: 1000,
  /**
   * A care team's title length in characters; it is sealed end to end (`SealedTeamDetails`). Plain
   * group conversations (`conversation:create`) have no title, so the hub holds none in plaintext.
   */
  MAX_TITLE_LENGTH: 200,
  /** A care team's description, in characters (sealed with its title). */
  MAX_TEAM_DESCRIPTION_LENGTH: 1000,
  /**
   * Largest sealed title and description of a care team, in bytes (nonce, ciphertext and tag): the
   * most the hub stores for them, whatever it cannot read inside.
   */
  MAX_SEALED_TEAM_DETAILS_BYTES: 8 * 1024,
  /** Envelopes returned by one `sync:fetch` page. */
  MAX_SYNC_PAGE: 500,
  /** Conversations per `conversation:list` page (an answer also ends early near MAX_SYNC_PAGE_BYTES). */
  MAX_CONVERSATION_PAGE: 500,
  /** Bytes of bodies and ciphertexts in one `sync:fetch` page (it ends early past this; at least one envelope). */
  MAX_SYNC_PAGE_BYTES: 1024 * 1024,
  /** Devices in one clinician's signed device list. */
  MAX_DEVICES_PER_USER: 32,
  /** Signed device-list versions the hub keeps per clinician (older ones are dropped; see `devices:lists`). */
  MAX_DEVICE_LIST_HISTORY: 64,
  /** A directory profile field (display name, role, department), in characters. */
  MAX_PROFILE_FIELD_LENGTH: 100,
  /** A `directory:search` query, in characters. */
  MAX_DIRECTORY_QUERY_LENGTH: 100,
  /** Profiles one `directory:search` answers at most. */
  MAX_DIRECTORY_RESULTS: 50,
  /** Later tiers of one escalation (alerts.ts). */
  MAX_ESCALATION_TIERS: 3,
  /** Users one escalation tier may name. */
  MAX_ESCALATION_TIER_USERS: 20,
  /** The earliest and latest a tier may activate after the send (ms). */
  MIN_ESCALATION_MS: 1_000,
  MAX_ESCALATION_MS: 86_400_000,
  /** An on-call role's name ("Cardiology on-call"), in characters. */
  MAX_ROLE_NAME_LENGTH: 100,
  /** Shifts one `schedule` statement of an on-call role sets. */
  MAX_ROLE_SHIFTS: 500,
  /** Members one shift names. */
  MAX_ROLE_SHIFT_USERS: 10,
  /** The longest shift (ms): 31 days. */
  MAX_ROLE_SHIFT_MS: 31 * 86_400_000,
  /** How far a `hold` statement's time may be from the hub's clock (ms). */
  MAX_HOLD_CLOCK_SKEW_MS: 5 * 60_000,
  /** Statements one `role:log` answers at most (older ones first; page with `fromIndex`). */
  MAX_ROLE_LOG_PAGE: 200,
  /** Pending urgent messages one hand-off envelope passes on. */
  MAX_HANDOFF_MESSAGES: 50,
  /** Roles one `role:search` answers at most. */
  MAX_ROLE_RESULTS: 50,
  /** A consult pool's topic ("Dermatology curbside"), in characters. */
  MAX_POOL_TOPIC_LENGTH: 100,
  /** Cases a pool's moderators may hide (the newest are kept in the pool's state). */
  MAX_POOL_HIDDEN: 2000,
  /** Pools one `pool:search` answers at most. */
  MAX_POOL_RESULTS: 50,
  /** A closing summary or a reply, in characters (the question itself is the message text). */
  MAX_CONSULT_SUMMARY_LENGTH: 4000,
  /** Attachments (uploads, attachments.ts) one message may name. */
  MAX_ATTACHMENTS_PER_MESSAGE: 10,
  /** Blinded messages (pseudonym tokens) one `pseudonym:request` may ask for. */
  MAX_PSEUDONYM_BATCH: 20,
  /** The largest per-clinician token cap (`perUser`) an office may set for one epoch and specialty. */
  MAX_PSEUDONYMS_PER_USER: 1000,
  /** Requests one `pseudonym:collect` may ask about. */
  MAX_PSEUDONYM_COLLECT: 100,
  /** Cursors in one `sync:fetch`. */
  MAX_SYNC_CURSORS: 5000,
} as const;
