import { FaultCluster, sleep } from '../cluster.js';
import { Balancer } from '../balancer.js';
import { InvariantChecker } from '../checker.js';
const t0 = Date.now();
const log = (l: string) => console.log(((Date.now() - t0) / 1000).toFixed(1), l);
const gap = Number(process.argv[2] ?? 1000);
const cluster = await FaultCluster.start({ log, keepDir: true, hubEnv: { SWEEP_INTERVAL_MS: '0' } });
const balancer = new Balancer(cluster); await balancer.start();
const checker = new InvariantChecker({ cluster, balancer, log: () => {} });
await checker.setup(); checker.startSending(); await sleep(2000);
for (let i = 0; i < 8; i++) {
  const n = i % 3;
  await cluster.stopNodeGracefully(n); await sleep(500); await cluster.restartNode(n);
  await sleep(gap);
  await cluster.restartDb({ downMs: 800 });
  await sleep(12000);
  const ready = await Promise.all(cluster.nodes.map((x) => fetch(x.url + '/readyz').then((r) => r.status, () => 0)));
  log(`cycle ${i}: node-${n + 1} restarted ${gap} ms before the DB; readyz ${ready.join('/')}; all connected ${checker.allConnected()} ${checker.placement()}`);
}
console.log(cluster.dir);
await checker.close(); await balancer.stop(); await cluster.stop();
process.exit(0);
