/**
 * A TCP load balancer in front of the cluster's hubs, as a hospital would put one: clients know one
 * URL; each new connection goes to the next hub that is up. When a hub dies its connections die with
 * it and the clients' own reconnects land on the survivors. This is the failover path that keeps the
 * SDK's outbox (and so retries with the same client message id, possibly on another node).
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { FaultCluster } from './cluster.js';

interface Pair {
  node: number;
  down: Socket;
  up: Socket;
}

export class Balancer {
  private server: Server | undefined;
  private next = 0;
  private readonly pairs = new Set<Pair>();
  port = 0;
  /** Connections routed, per node index. */
  readonly routed: number[] = [];

  constructor(private readonly cluster: FaultCluster) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.server = createServer((down) => this.route(down));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const addr = this.server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : 0;
  }

  /** Open connections per node index. */
  load(): number[] {
    const load = this.cluster.nodes.map(() => 0);
    for (const p of this.pairs) load[p.node] = (load[p.node] ?? 0) + 1;
    return load;
  }

  /**
   * Drop connections from nodes holding more than their share of the nodes that are up (as a
   * balancer draining an overloaded backend would); the clients reconnect through it. Returns how
   * many were dropped.
   */
  rebalance(): number {
    const up = this.cluster.upNodes().map((n) => n.index);
    if (up.length === 0) return 0;
    const share = Math.ceil(this.pairs.size / up.length);
    const byNode = new Map<number, Pair[]>();
    for (const p of this.pairs) byNode.set(p.node, [...(byNode.get(p.node) ?? []), p]);
    let dropped = 0;
    for (const [, pairs] of byNode) {
      for (const p of pairs.slice(share)) {
        p.down.destroy();
        p.up.destroy();
        dropped += 1;
      }
    }
    return dropped;
  }

  /** Cut every connection (a network blip between the clients and the hubs); the clients reconnect through it. */
  dropAll(): number {
    const n = this.pairs.size;
    for (const p of [...this.pairs]) {
      p.down.destroy();
      p.up.destroy();
    }
    return n;
  }

  async stop(): Promise<void> {
    for (const p of this.pairs) {
      p.down.destroy();
      p.up.destroy();
    }
    this.pairs.clear();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private route(down: Socket): void {
    const up = this.cluster.upNodes();
    if (up.length === 0) {
      down.destroy();
      return;
    }
    const node = up[this.next++ % up.length]!;
    this.routed[node.index] = (this.routed[node.index] ?? 0) + 1;
    const upstream = createConnection({ host: '127.0.0.1', port: node.port });
    const pair: Pair = { node: node.index, down, up: upstream };
    this.pairs.add(pair);
    const close = () => {
      this.pairs.delete(pair);
      down.destroy();
      upstream.destroy();
    };
    down.on('error', close);
    upstream.on('error', close);
    down.on('close', close);
    upstream.on('close', close);
    down.pipe(upstream);
    upstream.pipe(down);
  }
}
