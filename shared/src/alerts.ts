/**
 * Urgent messages that get answered (issue #20). A message may carry a priority: `routine` (the
 * default: an ordinary message), `urgent` or `emergent`. An urgent or emergent message raises an
 * alert: the hub keeps, as metadata it can see, who must acknowledge it and when, and re-notifies
 * the recipients' devices at the organisation's interval for the priority until someone required
 * acknowledges. The message's content stays end-to-end encrypted; the priority is also sealed inside
 * it, so a reader's client can tell when the hub's metadata disagrees with what the sender wrote.
 *
 * An acknowledgement is explicit ("Acknowledge"), distinct from read; it is recorded with who and
 * when, in the alert and in the hub's audit chain.
 */
import { z } from 'zod';
import { AckPolicySchema, AlertPrioritySchema, IdSchema, TimestampSchema, bytesSchema, type Ack } from './schemas.js';
import { Limits } from './limits.js';
import type { ClientEvent, ServerEvent } from './events.js';

export const PrioritySchema = z.enum(['routine', 'urgent', 'emergent']);
export type Priority = z.infer<typeof PrioritySchema>;

/** What happened to an alert, in order: the escalation timeline a clinician reads. */
export const AlertEventSchema = z.object({
  type: z.enum(['raised', 'repeated', 'escalated', 'handed-off', 'acknowledged', 'expired']),
  at: TimestampSchema,
  /** Which later tier was asked (from 1), for `escalated`. */
  tier: z.number().int().positive().optional(),
  /** Who acknowledged; for `handed-off`, who it was handed to. */
  userId: IdSchema.optional(),
  /** `handed-off`: the holder whose device handed it over. */
  byUserId: IdSchema.optional(),
  deviceId: IdSchema.optional(),
});
export type AlertEvent = z.infer<typeof AlertEventSchema>;

/** An alert as the hub keeps it and tells its sender and recipients. */
export const AlertStateSchema = z.object({
  conversationId: IdSchema,
  /** The message's sequence number in its conversation (with `conversationId`, the alert's id). */
  seq: z.number().int().positive(),
  messageId: IdSchema,
  senderUserId: IdSchema,
  priority: AlertPrioritySchema,
  ackPolicy: AckPolicySchema,
  /**
   * Who is asked to acknowledge now: the conversation's other members when the message was sent (in a
   * thread with an on-call role, the users its devices were named for), the users of every escalation
   * tier activated so far, and the new holders it was handed off to.
   */
  ackFrom: z.array(IdSchema),
  /** The escalation's later tiers, and when each was activated. */
  tiers: z.array(z.object({ afterMs: z.number().int().positive(), userIds: z.array(IdSchema), activatedAt: TimestampSchema.optional() })).optional(),
  acks: z.array(z.object({ userId: IdSchema, deviceId: IdSchema, at: TimestampSchema })),
  state: z.enum(['pending', 'acknowledged', 'expired']),
  /** Re-notifications so far. */
  repeats: z.number().int().nonnegative(),
  /** When the next re-notification is due, while pending. */
  nextDueAt: TimestampSchema.optional(),
  createdAt: TimestampSchema,
  timeline: z.array(AlertEventSchema),
});
export type AlertState = z.infer<typeof AlertStateSchema>;

/** Server push `alert`: an alert was raised, repeated, acknowledged or expired (its whole state). */
export const AlertUpdateSchema = AlertStateSchema.extend({ reason: AlertEventSchema.shape.type });
export type AlertUpdate = z.infer<typeof AlertUpdateSchema>;

const AlertRefSchema = z.strictObject({ conversationId: IdSchema, seq: z.number().int().positive() });

/**
 * `alert:ack`: acknowledge the alert raised by the message at `seq` of the conversation. Someone asked
 * from outside the conversation (an escalation tier's user) may add `confirmation`: an `acknowledged`
 * receipt sealed by their device for the sender's devices (a body under a one-off key, and the key for
 * each device over their 1:1 sessions). The hub puts it into the conversation's sequence as a receipt
 * from them, for the sender's devices only, so the sender can tell the acknowledgement is theirs.
 */
export const AlertAckRequestSchema = AlertRefSchema.extend({
  confirmation: z
    .strictObject({
      clientMessageId: IdSchema,
      body: bytesSchema(Limits.MAX_DEVICE_CIPHERTEXT_BYTES),
      recipients: z.array(z.strictObject({ deviceId: IdSchema, ciphertext: bytesSchema(Limits.MAX_DEVICE_CIPHERTEXT_BYTES) })).min(1).max(Limits.MAX_DEVICES_PER_USER),
    })
    .optional(),
});
export type AlertAckRequest = z.input<typeof AlertAckRequestSchema>;

/**
 * `alert:content`: for a user an escalation tier asked, the message as sealed for escalation (`body`)
 * and this device's wrapped key (`ciphertext`, absent when the sender had no session with it), with
 * what its associated data binds. Answered only once the caller's tier is active.
 */
export const AlertContentRequestSchema = AlertRefSchema;
export type AlertContentRequest = z.input<typeof AlertContentRequestSchema>;
export const AlertContentSchema = z.object({
  conversationId: IdSchema,
  seq: z.number().int().positive(),
  messageId: IdSchema,
  senderUserId: IdSchema,
  senderDeviceId: IdSchema,
  clientMessageId: IdSchema,
  sentAt: TimestampSchema,
  body: bytesSchema(Limits.MAX_CIPHERTEXT_BYTES),
  ciphertext: bytesSchema(Limits.MAX_DEVICE_CIPHERTEXT_BYTES).optional(),
});
export type AlertContent = z.infer<typeof AlertContentSchema>;

/** `alert:list`: the caller's open alerts (pending ones they must acknowledge or sent), to catch up after being offline. */
export const AlertListRequestSchema = z.strictObject({});
export const AlertListResultSchema = z.object({ alerts: z.array(AlertStateSchema) });
export type AlertListResult = z.infer<typeof AlertListResultSchema>;

// The typed socket.io event maps live in socket.ts; these entries extend them (declaration merging).
declare module './socket.js' {
  interface ClientToServerEvents {
    [ClientEvent.ALERT_ACK]: (req: AlertAckRequest, ack: (res: Ack<AlertState>) => void) => void;
    [ClientEvent.ALERT_LIST]: (req: Record<string, never>, ack: (res: Ack<AlertListResult>) => void) => void;
    [ClientEvent.ALERT_CONTENT]: (req: AlertContentRequest, ack: (res: Ack<AlertContent>) => void) => void;
  }
  interface ServerToClientEvents {
    [ServerEvent.ALERT]: (update: AlertUpdate) => void;
  }
}
