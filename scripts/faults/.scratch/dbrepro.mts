import { FaultCluster, sleep } from '../cluster.js';
const delays = (process.argv[2] ?? '1000,3000,12000').split(',').map(Number);
const c = await FaultCluster.start({ nodes: 1, keepDir: true });
for (const d of delays) {
  await c.restartNode(0);
  await sleep(d);
  await c.restartDb({ downMs: 800 });
  const states: string[] = [];
  for (let i = 0; i < 12; i++) {
    await sleep(2500);
    const r = await fetch(c.nodes[0]!.url + '/readyz').then(async (r) => `${r.status}`, () => 'x');
    states.push(r);
  }
  console.log(`hub started ${d} ms before the DB restart: readyz over 30 s: ${states.join(' ')}`);
}
console.log(c.dir);
await c.stop();
