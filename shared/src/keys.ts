/**
 * The one encoder for composite keys: socket.io rooms, Redis keys and members, cache tags, rate-limit
 * keys and database `_id`s that name a tuple of ids (organisation, user, device, conversation…).
 *
 * Why one encoder: rooms were once built as `u:<org>:<user>` while ids may contain `:`, so user
 * `icu:dr-lee` of org `hosp` and user `dr-lee` of org `hosp:icu` shared a room and one tenant received
 * the other's traffic. A key builder that joins ids with a character ids may contain is ambiguous;
 * this one is injective by construction, for any strings, so distinct tuples always give distinct keys
 * (test/unit/composite-key.test.ts checks every builder).
 *
 * Encoding: each part has `%`, space and control characters (U+0000–U+0020, U+007F) written as `%XX`
 * (two hex digits), and the parts are joined by one space. A part's encoding never contains a space,
 * so splitting at spaces and undoing the escapes gives the tuple back (`decodeCompositeKey`). The
 * contract refuses spaces and control characters in ids (`IdSchema`), so a key of valid ids is the ids
 * joined by spaces, readable in `redis-cli` and the database shell; no stored key ever holds NUL or a
 * control character (PostgreSQL's `jsonb`, under FerretDB, refuses `\u0000`).
 */
export function compositeKey(...parts: readonly string[]): string {
  // Zero parts and one empty part would both encode to '': every builder names at least one part.
  if (parts.length === 0) throw new TypeError('compositeKey: at least one part');
  // Refused, not stringified: an operator object smuggled in as an id must never become `[object Object]`.
  if (parts.some((p) => typeof p !== 'string')) throw new TypeError('compositeKey: every part must be a string');
  return parts.map(escapePart).join(' ');
}

/** The tuple a `compositeKey` was built from. Throws a TypeError on a string no tuple encodes to. */
export function decodeCompositeKey(key: string): string[] {
  return key.split(' ').map((part) => {
    if (/%(?![0-9A-F]{2})/.test(part) || /[\x00-\x20\x7f]/.test(part)) throw new TypeError(`decodeCompositeKey: not a composite key: ${JSON.stringify(key)}`);
    const decoded = part.replace(/%([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
    if (escapePart(decoded) !== part) throw new TypeError(`decodeCompositeKey: not a canonical composite key: ${JSON.stringify(key)}`);
    return decoded;
  });
}

const NEEDS_ESCAPE = /[%\x00-\x20\x7f]/;

function escapePart(part: string): string {
  // Valid ids never need it (the contract refuses spaces and control characters): no copy for them.
  if (!NEEDS_ESCAPE.test(part)) return part;
  return part.replace(/[%\x00-\x20\x7f]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}
