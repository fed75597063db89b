import type { SecureMessenger } from './e2ee/secure-messenger.js';
import type { SafetyNumber } from './e2ee/types.js';

/**
 * Trust in contacts' keys (`client.trust`): safety numbers, verifying them, and accepting a changed
 * key. Until a changed key is accepted, nothing is sent to that contact.
 */
export class Trust {
  /** @internal */
  constructor(private readonly messenger: SecureMessenger) {}

  /**
   * The safety number with a contact: 60 digits both clinicians see identically when no one is in the
   * middle. Compare them in person or over a trusted channel, then call {@link markVerified}. After the
   * contact's key changed it is the new number with `state: 'changed'` (and an `identityChanged`
   * event), until {@link acceptIdentity}.
   *
   * @example
   * ```ts
   * const { displayString, state } = await client.trust.safetyNumber('dr-patel');
   * if (state === 'changed') askToCompareAgain(displayString);
   * ```
   */
  safetyNumber(userId: string): Promise<SafetyNumber> {
    return this.messenger.safetyNumber(userId);
  }

  /** Accept a contact's changed safety key; sending to them resumes with fresh sessions. */
  acceptIdentity(userId: string): Promise<void> {
    return this.messenger.acceptIdentity(userId);
  }

  /** Record that the user compared safety numbers with this contact and they matched. */
  markVerified(userId: string): Promise<void> {
    return this.messenger.markVerified(userId);
  }

  /** This device's public identity key (created on first use). */
  identityKey(): Promise<Uint8Array> {
    return this.messenger.identityKey();
  }
}
