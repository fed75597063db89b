import { GENESIS_HASH, type AuditReader } from './port.js';
import { hashAuditEntry } from './chain.js';

export interface ChainVerdict {
  chain: string;
  entries: number;
  /** Hash of the last entry: keep it somewhere else (a ticket, a signed e-mail) to detect a rewrite of the whole chain later. */
  headHash: string | undefined;
  problems: string[];
}

export interface AuditVerdict {
  ok: boolean;
  chains: ChainVerdict[];
}

const PAGE = 1000;
const MAX_PROBLEMS_PER_CHAIN = 20;

/**
 * Walk every chain from index 0: each entry must have the next index, point at the previous
 * entry's hash and hash to what it says; the chain must reach the recorded head. A changed entry
 * fails its own hash (or, if its hash was recomputed, the next entry's `prevHash`); a deleted one
 * leaves a gap; a cut-off tail falls short of the recorded head.
 */
export async function verifyAuditLog(reader: AuditReader, options: { expectedHeads?: Record<string, string> } = {}): Promise<AuditVerdict> {
  const chains: ChainVerdict[] = [];
  const names = new Set(await reader.chains());
  for (const c of Object.keys(options.expectedHeads ?? {})) names.add(c);
  for (const chain of [...names].sort()) {
    const problems: string[] = [];
    const problem = (p: string) => {
      if (problems.length < MAX_PROBLEMS_PER_CHAIN) problems.push(p);
      else if (problems.length === MAX_PROBLEMS_PER_CHAIN) problems.push('... more problems not listed');
    };
    let expectedIndex = 0;
    let prevHash = GENESIS_HASH;
    let count = 0;
    let after = -1;
    let headHash: string | undefined;
    for (;;) {
      const page = await reader.entries(chain, after, PAGE);
      for (const e of page) {
        count++;
        if (e.chain !== chain) problem(`entry ${e.index}: belongs to chain "${e.chain}"`);
        if (e.index !== expectedIndex) problem(`entries ${expectedIndex}..${e.index - 1} are missing (deleted?)`);
        if (e.prevHash !== prevHash) problem(`entry ${e.index}: prevHash does not match the previous entry (an entry before it was changed or removed)`);
        const actual = hashAuditEntry(e);
        if (actual !== e.hash) problem(`entry ${e.index}: content does not match its hash (changed after it was written)`);
        expectedIndex = e.index + 1;
        prevHash = e.hash;
        headHash = e.hash;
        after = e.index;
      }
      if (page.length < PAGE) break;
    }
    const head = await reader.recordedHead(chain);
    if (head !== undefined && head >= expectedIndex) problem(`the chain ends at index ${expectedIndex - 1} but entries up to ${head} were written (tail cut off)`);
    const expected = options.expectedHeads?.[chain];
    if (expected !== undefined && expected !== headHash) problem(`head hash ${headHash ?? '(none)'} is not the expected ${expected}`);
    chains.push({ chain, entries: count, headHash, problems });
  }
  return { ok: chains.every((c) => c.problems.length === 0), chains };
}

/** The verdict as plain text for a terminal. */
export function formatVerdict(v: AuditVerdict): string {
  const lines = v.chains.map((c) =>
    c.problems.length === 0
      ? `  ok        ${c.chain}: ${c.entries} entries, head ${c.headHash ?? '(empty)'}`
      : `  TAMPERED  ${c.chain}: ${c.entries} entries\n${c.problems.map((p) => `            - ${p}`).join('\n')}`,
  );
  const verdict = v.ok
    ? `AUDIT LOG INTACT: ${v.chains.length} chain(s), ${v.chains.reduce((n, c) => n + c.entries, 0)} entries verified.`
    : `AUDIT LOG TAMPERED: ${v.chains.filter((c) => c.problems.length).length} of ${v.chains.length} chain(s) fail verification.`;
  return [verdict, ...lines].join('\n');
}
