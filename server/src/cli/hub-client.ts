import { Readable } from 'node:stream';
import { ADMIN_OPERATOR_HEADER, RestErrorBodySchema } from '@curbside/shared';
import type { z } from 'zod';
import { CliError, UsageError } from './errors.js';

/** The admin HTTP API of one hub. */
export class HubClient {
  constructor(private readonly o: { url: string; token: string | undefined; operator: string }) {}

  private async request(method: 'GET' | 'POST', path: string, query: Record<string, string | undefined>, body: unknown): Promise<Response> {
    if (!this.o.token) throw new UsageError('no admin token: set ADMIN_TOKEN or pass --token');
    const qs = new URLSearchParams(Object.entries(query).filter((e): e is [string, string] => e[1] !== undefined));
    const url = `${this.o.url}${path}${qs.size ? `?${qs}` : ''}`;
    try {
      return await fetch(url, {
        method,
        headers: {
          authorization: `Bearer ${this.o.token}`,
          [ADMIN_OPERATOR_HEADER]: this.o.operator,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new CliError(`cannot reach the hub at ${this.o.url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`, 69);
    }
  }

  private async answer<S extends z.ZodType>(res: Response, schema: S | undefined, okStatuses: number[]): Promise<z.output<S>> {
    if (res.status === 204) return undefined as z.output<S>;
    const json: unknown = await res.json().catch(() => undefined);
    if (!res.ok && !okStatuses.includes(res.status)) {
      const error = RestErrorBodySchema.safeParse(json);
      throw new CliError(error.success ? `${error.data.error.code}: ${error.data.error.message}` : `the hub answered HTTP ${res.status}`, 1);
    }
    if (!schema) return json as z.output<S>;
    const parsed = schema.safeParse(json);
    if (!parsed.success) throw new CliError('the hub answered something this CLI does not understand (another version?)', 1);
    return parsed.data;
  }

  async get<S extends z.ZodType>(path: string, query: Record<string, string | undefined>, schema: S, okStatuses: number[] = []): Promise<z.output<S>> {
    return this.answer(await this.request('GET', path, query, undefined), schema, okStatuses);
  }

  async post<S extends z.ZodType>(path: string, body: Record<string, unknown>, schema: S | undefined): Promise<z.output<S>> {
    return this.answer(await this.request('POST', path, {}, body), schema, []);
  }

  async stream(path: string, query: Record<string, string | undefined>): Promise<Readable> {
    const res = await this.request('GET', path, query, undefined);
    if (!res.ok || !res.body) await this.answer(res, undefined, []);
    return Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
  }
}
