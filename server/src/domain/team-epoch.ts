import { createHash } from 'node:crypto';

/**
 * The hash of a care-team statement's canonical form: the log's head after it, and so the membership
 * epoch that team messages sequenced after it must be bound to (hex SHA-256, as clients compute it).
 */
export function statementHash(canonical: string): string {
  return createHash('sha256').update(canonical, 'utf8').digest('hex');
}
