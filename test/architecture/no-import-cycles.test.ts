/**
 * No import cycles in any workspace (issue #17): the import graph of every source file of shared/,
 * server/, client-sdk/ and widget/ (type-only imports included, since a cycle of types is still two
 * modules that cannot be understood apart) has no strongly connected component larger than one file.
 * Imports are resolved by the TypeScript compiler with the repository's settings. (madge 8 would do
 * the same but requires TypeScript 5; the compiler we already build with is the better resolver.)
 */
import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const WORKSPACES = ['shared/src', 'server/src', 'client-sdk/src', 'widget/src'];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** Each file's imports that resolve to another source file of ours. */
function importGraph(files: string[]): Map<string, string[]> {
  const base = ts.readConfigFile(join(repoRoot, 'tsconfig.base.json'), (p) => ts.sys.readFile(p));
  const { options } = ts.parseJsonConfigFileContent(base.config, ts.sys, repoRoot);
  const ours = new Set(files);
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    const targets = importedFiles
      .map((i) => ts.resolveModuleName(i.fileName, file, options, ts.sys).resolvedModule?.resolvedFileName)
      .filter((f): f is string => f !== undefined && ours.has(f));
    graph.set(file, [...new Set(targets)]);
  }
  return graph;
}

/** Tarjan's strongly connected components; every component of more than one file is a cycle. */
function cycles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(component);
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

describe('architecture: no import cycles', function () {
  this.timeout(60_000);

  it('the checker finds a cycle when there is one', () => {
    const graph = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a']],
      ['d', ['a']],
    ]);
    expect(cycles(graph).map((c) => c.sort())).to.deep.equal([['a', 'b', 'c']]);
    expect(cycles(new Map([['a', ['b']], ['b', []]]))).to.deep.equal([]);
  });

  it('no workspace has one, type-only imports included', () => {
    const files = WORKSPACES.flatMap((w) => sourceFiles(join(repoRoot, w)));
    expect(files.length).to.be.greaterThan(100);
    const graph = importGraph(files);
    const edges = [...graph.values()].reduce((n, t) => n + t.length, 0);
    expect(edges, 'imports were resolved').to.be.greaterThan(files.length);
    const found = cycles(graph).map((c) => c.map((f) => relative(repoRoot, f)).sort());
    expect(found, found.map((c) => c.join(' ⇄ ')).join('\n')).to.deep.equal([]);
  });
});
