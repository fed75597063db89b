/**
 * No source file over about 400 lines unless its first comment says why (issue #17): a long file is
 * usually several things that want to be understood apart. Every TypeScript file of the workspaces
 * and scripts over 450 lines must say, in its first comment, `Long file:` and the reason.
 */
import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ROOTS = ['shared/src', 'server/src', 'client-sdk/src', 'widget/src', 'scripts'];
const LIMIT = 450;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' || e.name === 'dist' ? [] : sourceFiles(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** The file's first comment: a leading block comment (after imports are not looked at) or run of line comments. */
export function firstComment(text: string): string {
  const trimmed = text.replace(/^#![^\n]*\n/, '').trimStart();
  if (trimmed.startsWith('/*')) return trimmed.slice(0, trimmed.indexOf('*/') + 2);
  const lines = trimmed.split('\n');
  const run: string[] = [];
  for (const l of lines) {
    if (!l.trimStart().startsWith('//')) break;
    run.push(l);
  }
  return run.join('\n');
}

describe('architecture: long files say why', () => {
  it('the first comment is found, block or line comments', () => {
    expect(firstComment('/**\n * Long file: one state machine.\n */\nexport {}')).to.match(/Long file: one state machine/);
    expect(firstComment('#!/usr/bin/env node\n// Long file: a script.\n// More.\nconst a = 1;')).to.equal('// Long file: a script.\n// More.');
    expect(firstComment("import x from 'y';\n/** Long file: too late. */")).to.equal('');
  });

  it(`every source file over ${LIMIT} lines says "Long file:" and why in its first comment`, () => {
    const files = ROOTS.flatMap((r) => sourceFiles(join(repoRoot, r)));
    expect(files.length).to.be.greaterThan(150);
    const unexplained = files
      .map((f) => ({ f, text: readFileSync(f, 'utf8') }))
      .filter(({ text }) => text.split('\n').length > LIMIT && !/Long file: \S/.test(firstComment(text)))
      .map(({ f, text }) => `${relative(repoRoot, f)} (${text.split('\n').length} lines)`);
    expect(unexplained, unexplained.join('\n')).to.deep.equal([]);
  });
});
