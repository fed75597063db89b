/**
 * The attachment endpoints over HTTP (`fetch`, in browsers and Node 18+), authenticated like the
 * socket. Retryable failures (the network, a node going down, UNAVAILABLE, RATE_LIMITED) are tried
 * again with backoff, moving to the next hub node each time; an upload then asks the hub which parts
 * it stored and sends only the rest.
 */
import {
  AttachmentPath,
  AttachmentStatusSchema,
  ErrorCode,
  attachmentPath,
  backoffMs,
  sleep,
  type AttachmentCreateRequest,
  type AttachmentStatus,
} from '@curbside/shared';
import { CurbsideError, isCurbsideError } from '../errors.js';
import { restCall } from '../hub/rest.js';

/** What the transfer needs from the client's hub connection. */
export interface HubHttp {
  /** Hub nodes, the one in use first. */
  nodeUrls(): string[];
  authHeaders(): Promise<Record<string, string>>;
}

export interface RetryPolicy {
  /** Attempts of one request before its error is final. @default 8 */
  attempts?: number;
  /** @default 250 */
  baseDelayMs?: number;
  /** @default 5000 */
  maxDelayMs?: number;
}

const RETRY_CODES = new Set<string>([ErrorCode.UNAVAILABLE, ErrorCode.RATE_LIMITED, ErrorCode.INTERNAL, ErrorCode.TIMEOUT, ErrorCode.NOT_CONNECTED]);

export class AttachmentTransfer {
  /** The node requests go to, until one fails there (then the next in the list). */
  private current: string | undefined;

  constructor(
    private readonly hub: HubHttp,
    private readonly retry: RetryPolicy = {},
  ) {}

  create(req: AttachmentCreateRequest): Promise<AttachmentStatus> {
    return this.withRetry(async (base, headers) => parseStatus(await this.call(`${base}${AttachmentPath.CREATE}`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(req) })));
  }

  status(attachmentId: string): Promise<AttachmentStatus> {
    return this.withRetry(async (base, headers) => parseStatus(await this.call(`${base}${attachmentPath(AttachmentPath.STATUS, attachmentId)}`, { headers })));
  }

  finish(attachmentId: string): Promise<AttachmentStatus> {
    return this.withRetry(async (base, headers) => parseStatus(await this.call(`${base}${attachmentPath(AttachmentPath.FINISH, attachmentId)}`, { method: 'POST', headers })));
  }

  /**
   * One attempt at one part (the uploader decides what to do on failure: ask `status`, then resend).
   * @returns the node it was sent to (for `backoff`)
   */
  async putPart(attachmentId: string, index: number, bytes: Uint8Array): Promise<{ node: string }> {
    const base = this.node();
    const headers = await this.hub.authHeaders();
    await this.call(`${base}${attachmentPath(AttachmentPath.PART, attachmentId, index)}`, {
      method: 'PUT',
      headers: { ...headers, 'content-type': 'application/octet-stream' },
      body: bytes as unknown as BodyInit,
    }).catch((e: unknown) => {
      throw Object.assign(e as object, { node: base });
    });
    return { node: base };
  }

  /** The ciphertext, streamed (retried until the response starts; a failure mid-stream is the caller's). */
  download(attachmentId: string): Promise<{ size: number; body: AsyncIterable<Uint8Array> }> {
    return this.withRetry(async (base, headers) => {
      const res = await this.call(`${base}${attachmentPath(AttachmentPath.CONTENT, attachmentId)}`, { headers });
      if (!res.body) throw new CurbsideError(ErrorCode.INTERNAL, 'The hub sent no body');
      return { size: Number(res.headers.get('content-length') ?? 0), body: bodyChunks(res.body) };
    });
  }

  /** Whether `e` is worth another attempt. */
  static retryable(e: unknown): boolean {
    return isCurbsideError(e) && RETRY_CODES.has(e.code);
  }

  /**
   * Back off before attempt `attempt` (from 1), honouring the hub's `retryAfterMs`, and move to the
   * next node if the failure was on the one in use (several parts failing on one node move once).
   */
  async backoff(attempt: number, e: unknown): Promise<void> {
    const hinted = isCurbsideError(e) ? Math.min(e.retryAfterMs, 30_000) : 0;
    const failedOn = (e as { node?: unknown }).node;
    if (typeof failedOn === 'string' && failedOn === this.current) {
      const urls = this.hub.nodeUrls();
      this.current = urls[(urls.indexOf(failedOn) + 1) % urls.length];
    }
    await sleep(Math.max(hinted, backoffMs(attempt, { baseMs: this.retry.baseDelayMs ?? 250, maxMs: this.retry.maxDelayMs ?? 5000 })));
  }

  get attempts(): number {
    return this.retry.attempts ?? 8;
  }

  private node(): string {
    const urls = this.hub.nodeUrls();
    if (this.current === undefined || !urls.includes(this.current)) this.current = urls[0]!;
    return this.current;
  }

  private async withRetry<T>(run: (base: string, headers: Record<string, string>) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const base = this.node();
      try {
        return await run(base, await this.hub.authHeaders());
      } catch (e) {
        if (e && typeof e === 'object') Object.assign(e, { node: base });
        if (!AttachmentTransfer.retryable(e) || attempt >= this.attempts) throw e;
        await this.backoff(attempt, e);
      }
    }
  }

  private call(url: string, init: RequestInit): Promise<Response> {
    return restCall(url, init);
  }

}

async function parseStatus(res: Response): Promise<AttachmentStatus> {
  const parsed = AttachmentStatusSchema.safeParse(await res.json());
  if (!parsed.success) throw new CurbsideError(ErrorCode.INTERNAL, 'Malformed attachment status from the hub');
  return parsed.data;
}

/** A fetch body as byte chunks; a connection lost mid-way is UNAVAILABLE. */
async function* bodyChunks(body: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  try {
    for (;;) {
      let step: ReadableStreamReadResult<Uint8Array>;
      try {
        step = await reader.read();
      } catch (e) {
        throw new CurbsideError(ErrorCode.UNAVAILABLE, `The download was cut off (${(e as Error).message})`);
      }
      if (step.done) return;
      yield step.value;
    }
  } finally {
    reader.releaseLock();
    void body.cancel().catch(() => {});
  }
}
