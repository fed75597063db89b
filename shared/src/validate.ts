import type { z } from 'zod';
import { ErrorCode, type WireError } from './errors.js';

/**
 * Parse a payload with its schema and turn failures into a typed wire error.
 * `too_big` anywhere makes it PAYLOAD_TOO_LARGE; anything else is INVALID_PAYLOAD.
 * Issue messages name paths and limits only, never the offending values.
 */
export function parsePayload<S extends z.ZodType>(
  schema: S,
  input: unknown,
): { ok: true; value: z.output<S> } | { ok: false; error: WireError } {
  const result = schema.safeParse(input);
  if (result.success) return { ok: true, value: result.data };
  const issues = result.error.issues.slice(0, 10).map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
  const tooBig = result.error.issues.some((i) => i.code === 'too_big');
  return {
    ok: false,
    error: {
      code: tooBig ? ErrorCode.PAYLOAD_TOO_LARGE : ErrorCode.INVALID_PAYLOAD,
      message: tooBig ? 'Payload exceeds a size limit' : 'Payload does not match the schema',
      details: { issues },
    },
  };
}
