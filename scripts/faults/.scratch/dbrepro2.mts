import { FaultCluster, sleep } from '../cluster.js';
import { CurbsideClient } from '@curbside/client-sdk';
const delays = (process.argv[2] ?? '1000').split(',').map(Number);
const c = await FaultCluster.start({ nodes: 1, keepDir: true });
for (const d of delays) {
  await c.restartNode(0);
  const url = c.nodes[0]!.url;
  let stop = false;
  const results = new Map<string, number>();
  // hammer: readyz and socket handshakes
  const hammer = (async () => {
    while (!stop) {
      const client = new CurbsideClient({ url, token: () => c.mint({ userId: 'u1', deviceId: 'd1' }), e2ee: false, transports: ['websocket'], requestTimeoutMs: 3000 });
      const r = await Promise.race([client.connect().then(() => 'ok', (e) => String(e.code ?? e)), sleep(4000).then(() => 'hang')]);
      client.disconnect();
      results.set(r, (results.get(r) ?? 0) + 1);
      await sleep(50);
    }
  })();
  await sleep(d);
  await c.restartDb({ downMs: 800 });
  const phase1 = JSON.stringify([...results]);
  results.clear();
  await sleep(15000);
  stop = true; await hammer;
  console.log(`hub started ${d} ms before the DB restart: until restart ${phase1}; 15 s after: ${JSON.stringify([...results])}`);
}
console.log(c.dir);
await c.stop();
