/** The hub's REST endpoints over `fetch` (browsers and Node 18+), every failure a typed CurbsideError. */
import { ErrorCode, RestErrorBodySchema } from '@curbside/shared';
import { CurbsideError } from '../errors.js';

/** fetch, with every failure a CurbsideError: a network failure is UNAVAILABLE, an error body its code. */
export async function restCall(url: string, init: RequestInit): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, init);
  } catch (e) {
    throw new CurbsideError(ErrorCode.UNAVAILABLE, `The hub could not be reached (${(e as Error).message})`);
  }
  if (res.ok) return res;
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    body = undefined;
  }
  const parsed = RestErrorBodySchema.safeParse(body);
  if (parsed.success) throw CurbsideError.fromWire(parsed.data.error);
  throw new CurbsideError(res.status >= 500 ? ErrorCode.UNAVAILABLE : ErrorCode.INTERNAL, `The hub answered HTTP ${res.status}`);
}
