import { CurbsideClient, MemoryDeviceStore } from '@curbside/client-sdk';
import { FaultCluster, type ClusterOptions } from '../../scripts/faults/cluster.js';

/**
 * A fault cluster per test and SDK clients of it that fail over between the URLs they are given,
 * all stopped after each test (call from a `describe`).
 */
export function faultClients(): {
  start(options: ClusterOptions): Promise<FaultCluster>;
  client(who: { userId: string; deviceId: string }, urls: string[]): CurbsideClient;
} {
  let cluster: FaultCluster | undefined;
  const clients: CurbsideClient[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    await cluster?.stop();
    cluster = undefined;
  });
  return {
    async start(options) {
      cluster = await FaultCluster.start(options);
      return cluster;
    },
    client(who, urls) {
      const c = cluster;
      if (!c) throw new Error('start the cluster first');
      const made = new CurbsideClient({ url: urls, token: () => c.mint(who), store: new MemoryDeviceStore(), transports: ['websocket'], reconnectDelayMs: 200, reconnectDelayMaxMs: 1000 });
      clients.push(made);
      return made;
    },
  };
}
