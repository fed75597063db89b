import type { DeviceIdentity, DeviceRevokeResult, OwnDevice } from '@curbside/shared';
import type { CurbsideError } from './errors.js';
import type { LinkCode, LinkState } from './e2ee/device-lists.js';
import type { SecureMessenger } from './e2ee/secure-messenger.js';
import type { HubApi } from './hub/api.js';

/** What the device namespace tells the client's listeners. */
export interface DeviceEvents {
  linkRequired(code: LinkCode): void;
  deviceLinked(info: { version: number }): void;
  error(error: CurbsideError): void;
}

/**
 * Devices (`client.devices`): whose devices messages are encrypted to, this user's own devices, and
 * linking a new device into the user's signed device list.
 */
export class Devices {
  private state: LinkState | undefined;

  /** @internal */
  constructor(
    private readonly deps: {
      api: HubApi;
      messenger: SecureMessenger;
      e2ee: boolean;
      self: () => { userId: string | undefined; deviceId: string | undefined };
      events: DeviceEvents;
    },
  ) {}

  /**
   * The devices of these users that messages are encrypted to: with end-to-end encryption on, those
   * each user's verified signed device list names (none for a user without one); with it off, every
   * device the hub lists.
   * @throws CurbsideError DEVICE_LIST_ROLLBACK or DEVICE_LIST_INVALID when a user's list does not verify
   */
  async list(userIds: string[]): Promise<DeviceIdentity[]> {
    if (this.deps.e2ee) return this.deps.messenger.listDevices(userIds);
    return (await this.deps.api.hubDevices(userIds)).devices;
  }

  /** This user's devices, including revoked ones (with when they were revoked). */
  mine(): Promise<OwnDevice[]> {
    return this.deps.api.myDevices();
  }

  /**
   * Revoke one of this user's devices (a lost phone): its connections drop, its keys are deleted from
   * the hub, it is signed out of the user's device list, contacts stop encrypting to it, and it can no
   * longer sign in (until an operator restores it).
   *
   * @param deviceId - this device, or another of the user's devices
   * @throws CurbsideError REAUTHENTICATION_REQUIRED when revoking another device with a token whose
   *   sign-in (`auth_time`) is older than the hub allows: have the user sign in again, then retry
   * @example
   * ```ts
   * await client.devices.revoke('lee-old-phone');
   * ```
   */
  async revoke(deviceId: string): Promise<DeviceRevokeResult> {
    const result = await this.deps.api.revokeDevice(deviceId);
    // Then sign it out of the user's device list, so contacts drop it on the list's word, not only the hub's.
    if (this.deps.e2ee && deviceId !== this.deps.self().deviceId && this.state === 'linked') {
      await this.deps.messenger.deviceLists.unlink(deviceId).catch((e: unknown) => this.deps.events.error(e as CurbsideError));
    }
    return result;
  }

  /**
   * Whether this device is in its user's signed device list (`linked`), or waits for another of the
   * user's devices to link it (`pending`; see the `linkRequired` event). Undefined before the first
   * connect, and with end-to-end encryption off.
   */
  get linkState(): LinkState | undefined {
    return this.state;
  }

  /**
   * The code this device shows to be linked: the user enters it (or scans it) on another of their
   * devices, which calls {@link link}.
   * @example
   * ```ts
   * client.on('linkRequired', ({ deviceId, code }) => showLinkScreen(deviceId, code));
   * ```
   */
  linkCode(): Promise<LinkCode> {
    return this.deps.messenger.deviceLists.linkCode();
  }

  /**
   * Link a new device of this user: check that the identity key the hub presents for it matches the
   * code it shows, and sign the next version of the user's device list with it added. Its contacts
   * then encrypt to it, and it may send.
   * @returns the new device-list version
   * @throws CurbsideError LINK_CODE_MISMATCH if the code does not match; NOT_FOUND if the user has no
   *   such device with keys; DEVICE_NOT_LINKED if this device is not linked itself;
   *   REAUTHENTICATION_REQUIRED if this device's sign-in (`auth_time`) is older than the hub's
   *   RECENT_AUTH_SEC: get a fresh token from the identity provider and try again
   * @example
   * ```ts
   * await phone.devices.link({ deviceId: 'lee-laptop', code: '12345 67890 …' });
   * ```
   */
  link(code: LinkCode): Promise<number> {
    return this.deps.messenger.deviceLists.link(code.deviceId, code.code);
  }

  /** @internal Register this device in its user's signed list (the first device), or learn whether another linked it. */
  async settle(): Promise<void> {
    const before = this.state;
    const lists = this.deps.messenger.deviceLists;
    const state = await lists.register();
    this.state = state;
    if (state === 'pending' && before !== 'pending') this.deps.events.linkRequired(await lists.linkCode());
    if (state === 'linked' && before === 'pending') {
      const own = await lists.pinned(this.deps.self().userId!);
      this.deps.events.deviceLinked({ version: own?.version ?? 0 });
    }
  }
}
