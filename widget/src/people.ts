/**
 * Who a user id is, for display: the directory's display name (falling back to the id) and role or
 * specialty and department as secondary text. Views ask synchronously; ids not known yet are looked
 * up in one batch (the SDK caches them), and `onChange` re-renders once the answers are in.
 */
import type { CredentialCheck, DirectoryProfile } from '@curbside/client-sdk';

export type ProfileLookup = (userIds: string[]) => Promise<DirectoryProfile[]>;
export type CredentialLookup = (userId: string) => Promise<CredentialCheck>;

export class People {
  private readonly profiles = new Map<string, DirectoryProfile>();
  private readonly asked = new Set<string>();
  private readonly wanted = new Set<string>();
  private scheduled = false;
  private lookup: ProfileLookup | undefined;
  private checkCredential: CredentialLookup | undefined;
  /** Credentials as the SDK verified them, by user (asked once per user, then as the SDK's cache allows). */
  private readonly credentials = new Map<string, CredentialCheck | 'asking'>();

  constructor(private readonly onChange: () => void) {}

  /** How to ask the directory and check credentials (the SDK client's), or undefined while there is no client. */
  use(lookup: ProfileLookup | undefined, checkCredential?: CredentialLookup): void {
    this.lookup = lookup;
    this.checkCredential = checkCredential;
    this.schedule();
  }

  /** The user's credential if this device verified one (the office's attestation, checked by the SDK), else undefined. */
  verified(userId: string): CredentialCheck['credential'] | undefined {
    const known = this.credentials.get(userId);
    if (known === undefined && this.checkCredential) {
      this.credentials.set(userId, 'asking');
      this.checkCredential(userId).then(
        (check) => {
          this.credentials.set(userId, check);
          if (check.status === 'verified') this.onChange();
        },
        () => this.credentials.delete(userId),
      );
    }
    return known !== undefined && known !== 'asking' && known.status === 'verified' ? known.credential : undefined;
  }

  /** The display name, or the user id until (or unless) the directory has one. */
  name(userId: string): string {
    this.want(userId);
    return this.profiles.get(userId)?.displayName || userId;
  }

  /** Role or specialty and department, e.g. "Cardiology registrar · Cardiology" ('' when unknown). */
  detail(userId: string): string {
    this.want(userId);
    const p = this.profiles.get(userId);
    return [p?.role, p?.department].filter((s): s is string => !!s).join(' · ');
  }

  /** "Anita Patel (Cardiology registrar)": the name with the role, for one-line mentions. */
  nameWithRole(userId: string): string {
    const role = this.profiles.get(userId)?.role;
    const name = this.name(userId);
    return role ? `${name} (${role})` : name;
  }

  /** Profiles the widget learnt otherwise (a directory search). */
  remember(profiles: DirectoryProfile[]): void {
    let changed = false;
    for (const p of profiles) {
      this.asked.add(p.userId);
      const known = this.profiles.get(p.userId);
      if (known && known.displayName === p.displayName && known.role === p.role && known.department === p.department) continue;
      this.profiles.set(p.userId, p);
      changed = true;
    }
    if (changed) this.onChange();
  }

  /** Ask again for everyone shown so far (after a reconnect: profiles may have changed). */
  refresh(): void {
    this.credentials.clear();
    for (const u of this.asked) this.wanted.add(u);
    this.asked.clear();
    this.schedule();
  }

  private want(userId: string): void {
    if (!userId || this.asked.has(userId) || this.wanted.has(userId)) return;
    this.wanted.add(userId);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || !this.lookup || this.wanted.size === 0) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      const lookup = this.lookup;
      const ids = [...this.wanted];
      this.wanted.clear();
      if (!lookup || ids.length === 0) return;
      for (const u of ids) this.asked.add(u);
      lookup(ids).then(
        (profiles) => this.remember(profiles),
        () => {
          // Offline or refused: names stay ids, and are asked for again after the next sync (refresh).
          for (const u of ids) {
            this.asked.delete(u);
            this.wanted.add(u);
          }
        },
      );
    });
  }
}
