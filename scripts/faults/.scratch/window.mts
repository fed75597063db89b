import { FaultCluster, sleep } from '../cluster.js';
import { Balancer } from '../balancer.js';
import { InvariantChecker } from '../checker.js';
const t0 = Date.now();
const log = (l: string) => console.log(((Date.now() - t0) / 1000).toFixed(1), l);
const gaps = (process.argv[2] ?? '1000,3000,6000,12000,20000').split(',').map(Number);
const reps = Number(process.argv[3] ?? 3);
const cluster = await FaultCluster.start({ keepDir: true });
const balancer = new Balancer(cluster); await balancer.start();
let i = 0;
for (let rep = 0; rep < reps; rep++) {
  for (const gap of gaps) {
    await cluster.useFreshDatabase(`w${i}`);
    const checker = new InvariantChecker({ cluster, balancer, log: () => {} });
    await checker.setup(); checker.startSending();
    const n = i % 3; i++;
    await sleep(15000);
    await cluster.killNode(n); await sleep(500); await cluster.restartNode(n);
    const started = Date.now();
    await sleep(gap);
    await cluster.restartDb({ downMs: 800 });
    const since = Date.now() - started;
    await sleep(40000);
    const ready = await Promise.all(cluster.nodes.map((x) => fetch(x.url + '/readyz', { signal: AbortSignal.timeout(3000) }).then((r) => r.status, () => 0)));
    log(`node-${n + 1} started ${since} ms before the DB restart; 40 s later readyz ${ready.join('/')}${ready[n] !== 200 ? '  <== STUCK' : ''}${ready.some((r, k) => k !== n && r !== 200) ? '  (another node stuck)' : ''}`);
    await checker.close();
  }
}
console.log(cluster.dir);
await balancer.stop(); await cluster.stop();
process.exit(0);
