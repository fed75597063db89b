/** What the storage suites (`storage.contract.test.ts`, `storage-mongo.test.ts`) share. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Envelope } from '@curbside/shared';
import type { AppendResult } from '../../server/src/ports/storage.js';

export const T0 = Date.parse('2026-03-01T08:00:00Z');
export const ORG = 'org-a';
export const OTHER_ORG = 'org-b';

export function bytes(n: number): Uint8Array {
  return new Uint8Array(randomBytes(n));
}

export function sameBytes(actual: Uint8Array | undefined, expected: Uint8Array | undefined, what = 'body'): void {
  assert.ok(actual && expected, `${what} present`);
  assert.equal(actual.byteLength, expected.byteLength, `${what} length`);
  assert.ok(Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength).equals(Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength)), `${what} bytes differ`);
}

export function stored(r: AppendResult): Envelope {
  assert.equal(r.status, 'stored', `expected stored, got ${r.status}`);
  return (r as { envelope: Envelope }).envelope;
}

export function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
