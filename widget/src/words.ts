/** Plain words for clinicians: no stack traces or error codes as the primary text. */
import { isCurbsideError, ErrorCode, type AlertState, type AttachmentMetadataReport, type ConsultPart, type PseudonymInfo, type UnavailableMessage } from '@curbside/client-sdk';
import type { HistoryItem } from './history.js';

export function plainError(e: unknown): string {
  if (isCurbsideError(e)) {
    switch (e.code) {
      case ErrorCode.AUTH_EXPIRED:
        return 'Your sign-in has expired. Reload the page to sign in again.';
      case ErrorCode.AUTH_INVALID:
      case ErrorCode.AUTH_REQUIRED:
        return 'The hub did not accept this sign-in. Reload the page, or ask your administrator.';
      case ErrorCode.AUTH_REVOKED:
        return 'This device was signed out by an administrator.';
      case ErrorCode.USER_DISABLED:
        return 'Your account was disabled by an administrator. Ask your administrator.';
      case ErrorCode.NOT_CONNECTED:
      case ErrorCode.TIMEOUT:
      case ErrorCode.UNAVAILABLE:
        return 'Not sent: no connection to the hub. Try again when you are back online.';
      case ErrorCode.UNTRUSTED_IDENTITY:
        return 'Not sent: a safety number changed. Accept or verify it first.';
      case ErrorCode.FORBIDDEN:
        // A consult pool's credential gate: the hub says plainly what is missing.
        if ((e.details as { reason?: unknown } | undefined)?.reason === 'credential-required') return e.message;
        return 'You are not allowed to do that here (for example, you are no longer a member).';
      case ErrorCode.NOT_FOUND:
        return 'Not found: check the user ID.';
      case ErrorCode.RATE_LIMITED:
        return 'Too many requests. Wait a moment and try again.';
      case ErrorCode.ATTACHMENT_TOO_LARGE:
        return 'Not sent: this file is larger than your organisation allows.';
      case ErrorCode.QUOTA_EXCEEDED:
        return 'Not sent: your organisation’s storage for files is full. Ask your administrator.';
      case ErrorCode.UPLOAD_INCOMPLETE:
        return 'Not sent: the upload did not finish. Try again.';
      case ErrorCode.ATTACHMENT_TAMPERED:
        return 'This file was altered after it was sent (or is damaged): it was not opened.';
      case ErrorCode.PAYLOAD_TOO_LARGE:
        return 'This message is too long to send.';
      case ErrorCode.INVALID_PAYLOAD:
        return 'The hub refused this request: check what you entered (user IDs are letters, digits, dots, dashes).';
      case ErrorCode.IDENTITY_MISMATCH:
        return 'The hub has other keys on record for this device, so messages cannot reach it here. Sign in as a new device (or clear this browser’s Curbside data and ask your administrator to reset the device).';
      case ErrorCode.REAUTHENTICATION_REQUIRED:
        return 'For your safety, sign in again before linking, unlinking or removing another of your devices.';
      case ErrorCode.DEVICE_NOT_LINKED:
        return 'This device is not linked to your account yet: enter the code it shows on a device where you already use Curbside.';
      case ErrorCode.LINK_CODE_MISMATCH:
        return 'That code does not match the new device. Check it and try again; if it still does not match, do not link the device.';
      case ErrorCode.DEVICE_LIST_ROLLBACK:
      case ErrorCode.DEVICE_LIST_INVALID:
        return 'Not sent: the hub presented a device list for this person that their own devices did not sign. Tell your administrator.';
      case ErrorCode.DECRYPTION_FAILED:
        return e.message; // already written for clinicians by the SDK
      default:
        return 'Something went wrong talking to the hub. Try again.';
    }
  }
  if (e instanceof Error && /token/i.test(e.message)) return 'Could not sign in: the page did not supply a token.';
  if (e instanceof Error && e.name === 'DeviceStoreError') return 'This browser’s storage for Curbside is not available (private window or storage blocked?).';
  return 'Something went wrong. Reload the page and try again.';
}

export function unavailableText(reason: UnavailableMessage['reason']): string {
  switch (reason) {
    case 'before-you-joined':
      return 'Messages sent before you joined this care team are not available to you.';
    case 'removed':
      return 'You were removed from this care team: messages sent after that are not available to you.';
    default:
      return 'Messages sent before this device was set up cannot be read here.';
  }
}

/** "Sending…", "Sent", "Delivered", "Read", or for a care team "Read by 1 of 2". */
export function statusText(item: HistoryItem, recipients: number): string {
  switch (item.status) {
    case 'sending':
      return 'Sending…';
    case 'failed':
      return item.reason ?? 'Not sent';
    default: {
      const statuses = Object.values(item.recipients ?? {});
      const read = statuses.filter((s) => s === 'read').length;
      const delivered = statuses.filter((s) => s !== 'sent').length;
      const total = Math.max(recipients, statuses.length);
      if (total <= 1) return item.status === 'read' ? 'Read' : item.status === 'delivered' ? 'Delivered' : 'Sent';
      if (read === total) return 'Read by all';
      if (read > 0) return `Read by ${read} of ${total}`;
      if (delivered === total) return 'Delivered to all';
      if (delivered > 0) return `Delivered to ${delivered} of ${total}`;
      return 'Sent';
    }
  }
}

const clock = (at: number) => new Date(at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });

/**
 * An alert's story in one line: "sent 10:02 → repeated 10:04 → escalated to Rosa Ortiz 10:07 →
 * acknowledged by Anita Patel 10:08".
 */
export function alertTimeline(alert: AlertState, name: (userId: string) => string, sealed: (userId: string) => boolean = () => false): string {
  const parts = alert.timeline.map((e) => {
    switch (e.type) {
      case 'raised':
        return `sent ${clock(e.at)}`;
      case 'repeated':
        return `repeated ${clock(e.at)}`;
      case 'escalated': {
        const users = alert.tiers?.[(e.tier ?? 1) - 1]?.userIds ?? [];
        return `escalated to ${users.map(name).join(', ') || 'the next tier'} ${clock(e.at)}`;
      }
      case 'handed-off':
        return `handed over to ${e.userId ? name(e.userId) : 'the next holder'}${e.byUserId ? ` by ${name(e.byUserId)}` : ''} ${clock(e.at)}`;
      case 'acknowledged':
        // ✓: their own device confirmed it end to end, not only the hub.
        return `acknowledged by ${e.userId ? name(e.userId) : 'someone'}${e.userId && sealed(e.userId) ? ' ✓' : ''} ${clock(e.at)}`;
      case 'expired':
        return `no answer, stopped ${clock(e.at)}`;
    }
  });
  return parts.join(' → ');
}

/** Label of the care-team name field: the name is end-to-end encrypted like the messages. */
export const TEAM_TITLE_LABEL = 'Care team name (optional; only its members can read it)';

/** Shown for a care team whose title this device cannot decrypt yet (its key comes with a member's next message). */
export const TEAM_TITLE_PENDING = 'Care team (name not yet on this device)';

/** What a consult message is, for the thread and the conversation list ("Case", "Marked a reply helpful"…). */
export function consultLabel(part: ConsultPart): string {
  switch (part.type) {
    case 'case':
      return `Case: ${ageBandText(part.ageBand)}, ${sexText(part.sex).toLowerCase()}`;
    case 'reply':
      return 'Reply to a case';
    case 'helpful':
      return 'Marked a reply helpful';
    case 'close':
      return 'Closed a case. Summary:';
    case 'moved':
      return 'Case moved to a private chat';
  }
}

/**
 * Who a pseudonymous consult post is from: "A verified Dermatology", with "(you)" on the device that
 * asked the case; `start: false` for the middle of a sentence ("a verified Dermatology").
 */
export function pseudonymName(p: Pick<PseudonymInfo, 'specialty' | 'mine'>, start = true): string {
  return `${start ? 'A' : 'a'} verified ${p.specialty}${p.mine ? ' (you)' : ''}`;
}

/** "30–39 years", "Neonate", "80 and over": a case's age band in words. */
export function ageBandText(band: string): string {
  if (band === '80+') return '80 and over';
  if (/^\d+-\d+$/.test(band)) return `${band.replace('-', '–')} years`;
  return band.charAt(0).toUpperCase() + band.slice(1);
}

/** "Female", "Unknown": a case's sex in words. */
export function sexText(sex: string): string {
  return sex.charAt(0).toUpperCase() + sex.slice(1);
}

/**
 * The warning for an image sent with its metadata (the SDK's report says `not-removed`): it may say
 * where the photo was taken. Undefined when the metadata was removed or the file is no image.
 */
export function metadataWarning(report: AttachmentMetadataReport): string | undefined {
  if (report.status !== 'not-removed') return undefined;
  const what = `This ${report.format.toUpperCase()} ${report.format === 'gif' || report.format === 'tiff' ? 'image' : 'photo'}`;
  if (report.reason === 'format not supported') return `${what} may carry its location; metadata could not be removed.`;
  if (report.reason === 'too large') return `${what} may carry its location; it is too large to have its metadata removed.`;
  return `${what} may carry its location; it was sent with its metadata.`;
}
