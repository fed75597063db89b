/**
 * Who the token names: the widget reads `sub` and `dev` from the JWT the host page hands it (without
 * verifying it: the hub does), and makes up a device id per browser when the token names none.
 */
export interface Claims {
  sub?: string;
  dev?: string;
}

export function claimsOf(token: string): Claims {
  try {
    const part = token.split('.')[1] ?? '';
    const json = JSON.parse(atob(part.replace(/-/g, '+').replace(/_/g, '/'))) as Record<string, unknown>;
    return { ...(typeof json.sub === 'string' ? { sub: json.sub } : {}), ...(typeof json.dev === 'string' ? { dev: json.dev } : {}) };
  } catch {
    return {};
  }
}

/**
 * This browser's device id for `user` when tokens name no device (an OpenID Connect provider's):
 * made up once and kept in localStorage, so the device (and its IndexedDB keys) stays the same.
 */
export function browserDeviceId(user: string): string {
  const key = `curbside-device-id:${user}`;
  try {
    const kept = localStorage.getItem(key);
    if (kept) return kept;
    const made = `web-${crypto.randomUUID()}`;
    localStorage.setItem(key, made);
    return made;
  } catch {
    // No storage (a sandboxed frame): a device of this page's lifetime.
    return `web-${crypto.randomUUID()}`;
  }
}
