/**
 * Summarise a V8 CPU profile (`node --cpu-prof`, e.g. from `run.ts --hub-cpu-prof DIR`):
 * busy time per 5 s of the run, self time by function and by package, and inclusive time of the
 * functions that match --focus. `--from-s`/`--to-s` keep only the samples in that window (seconds
 * from the profile's start: the load steps, not the setup before them); shares are of busy time.
 *
 *   npx tsx scripts/bench/profile-summary.ts DIR/memory/CPU.*.cpuprofile [--top 30] [--focus gateway,relay] [--from-s 70 --to-s 95]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ options: { top: { type: 'string', default: '30' }, focus: { type: 'string' }, 'from-s': { type: 'string' }, 'to-s': { type: 'string' } }, allowPositionals: true });

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function pkgOf(url: string): string {
  if (!url) return '(native/vm)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 13).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  const m = /\/(server|shared|client-sdk)\/dist\/(.*)$/.exec(url);
  if (m) return `${m[1]}/${m[2]}`;
  if (url.startsWith('node:')) return url;
  return url.replace(/^file:\/\//, '');
}

for (const file of positionals) {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const idleId = p.nodes.find((n) => n.callFrame.functionName === '(idle)')?.id;
  const fromUs = Number(values['from-s'] ?? 0) * 1e6;
  const toUs = values['to-s'] === undefined ? Infinity : Number(values['to-s']) * 1e6;
  const self = new Map<number, number>();
  const busyPer5s: number[] = [];
  let at = 0;
  p.samples.forEach((id, i) => {
    const us = p.timeDeltas[i] ?? 0;
    at += us;
    if (id !== idleId) busyPer5s[Math.floor(at / 5e6)] = (busyPer5s[Math.floor(at / 5e6)] ?? 0) + us;
    if (at < fromUs || at >= toUs || id === idleId) return;
    self.set(id, (self.get(id) ?? 0) + us);
  });
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const byFn = new Map<string, number>();
  const byPkg = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const focus = values.focus?.split(',').filter(Boolean) ?? [];
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    const f = n.callFrame;
    const name = `${f.functionName || '(anonymous)'} ${pkgOf(f.url)}:${f.lineNumber + 1}`;
    byFn.set(name, (byFn.get(name) ?? 0) + us);
    const pkg = f.url ? pkgOf(f.url).split('/').slice(0, f.url.includes('/dist/') ? 2 : 1).join('/') : f.functionName.startsWith('(') ? f.functionName : '(native)';
    byPkg.set(pkg, (byPkg.get(pkg) ?? 0) + us);
    if (focus.length) {
      // Inclusive: charge every distinct matching frame on the stack once.
      const seen = new Set<string>();
      for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
        const cf = byId.get(cur)!.callFrame;
        const key = `${cf.functionName || '(anonymous)'} ${pkgOf(cf.url)}:${cf.lineNumber + 1}`;
        if (!seen.has(key) && focus.some((x) => key.includes(x))) {
          seen.add(key);
          inclusive.set(key, (inclusive.get(key) ?? 0) + us);
        }
      }
    }
  }
  const pct = (us: number) => `${((us / total) * 100).toFixed(1).padStart(5)}%`;
  const top = Number(values.top);
  console.log(`\n# ${file}: ${(total / 1000).toFixed(0)} ms busy in the window, profile ${((p.endTime - p.startTime) / 1e6).toFixed(1)} s`);
  console.log(`busy per 5 s from the start (%): ${Array.from(busyPer5s, (us) => Math.round((us ?? 0) / 5e4)).join(' ')}`);
  console.log('\n## self time by package');
  for (const [k, v] of [...byPkg].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(v)}  ${k}`);
  console.log('\n## self time by function');
  for (const [k, v] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(v)}  ${k}`);
  if (focus.length) {
    console.log(`\n## inclusive time of frames matching ${focus.join(', ')}`);
    for (const [k, v] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(v)}  ${k}`);
  }
}
