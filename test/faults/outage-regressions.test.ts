/**
 * Regressions found by the fault-injection run (scripts/faults, docs/faults.md), each on a real hub
 * process (`node server/dist/main.js`) with its own Redis and FerretDB.
 */
import { expect } from 'chai';
import { CurbsideClient, type Envelope } from '@curbside/client-sdk';
import { FaultCluster, sleep } from '../../scripts/faults/cluster.js';
import { Balancer } from '../../scripts/faults/balancer.js';
import { eventually } from '../../scripts/faults/checker.js';

describe('fault regressions: Redis outages', function () {
  this.timeout(120_000);
  let cluster: FaultCluster | undefined;
  let balancer: Balancer | undefined;
  const clients: CurbsideClient[] = [];

  afterEach(async () => {
    for (const c of clients.splice(0)) c.disconnect();
    await balancer?.stop();
    await cluster?.stop();
    balancer = undefined;
    cluster = undefined;
  });

  const client = (url: string, c: FaultCluster, who: { userId: string; deviceId: string }) => {
    const made = new CurbsideClient({ url, token: () => c.mint(who), e2ee: false, transports: ['websocket'], reconnectDelayMs: 200, reconnectDelayMaxMs: 1000, requestTimeoutMs: 10_000 });
    clients.push(made);
    return made;
  };

  it('a hub keeps running when Redis goes away while it fans out a message (an unhandled publish rejection used to end the process)', async () => {
    cluster = await FaultCluster.start({ nodes: 1 });
    const url = cluster.nodes[0]!.url;
    const lee = client(url, cluster, { userId: 'dr-lee', deviceId: 'lee-phone' });
    const patel = client(url, cluster, { userId: 'dr-patel', deviceId: 'patel-laptop' });
    const got: Envelope[] = [];
    patel.on('envelope', (e) => got.push(e));
    await Promise.all([lee.connect(), patel.connect()]);
    const conv = await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });

    const outage = cluster.restartRedis({ downMs: 3000 });
    await sleep(200);
    const ack = await lee.sendEnvelope(conv.id, { body: new TextEncoder().encode('while Redis is down') });
    expect(ack.seq).to.equal(1);
    await outage;
    await sleep(500);
    expect(cluster.unexpectedExits.map((e) => `${e.what} exited (code ${e.code}): ${e.tail.split('\n').slice(-4).join(' | ')}`)).to.deep.equal([]);
    expect(cluster.nodes[0]!.state).to.equal('up');
    await eventually(() => got.some((e) => e.seq === 1), 'the message reached the other device', 20_000);
  });

  it('an SDK client whose reconnect is refused with UNAVAILABLE (revocation list unreachable) keeps trying and comes back', async () => {
    cluster = await FaultCluster.start({ nodes: 1 });
    balancer = new Balancer(cluster);
    await balancer.start();
    const lee = client(balancer.url, cluster, { userId: 'dr-lee', deviceId: 'lee-phone' });
    const patel = client(cluster.nodes[0]!.url, cluster, { userId: 'dr-patel', deviceId: 'patel-laptop' });
    const gaveUp: string[] = [];
    lee.on('disconnected', (d) => !d.willReconnect && gaveUp.push(d.reason));
    const got: Envelope[] = [];
    lee.on('envelope', (e) => got.push(e));
    await Promise.all([lee.connect(), patel.connect()]);
    const conv = await patel.createConversation({ kind: 'direct', peerUserId: 'dr-lee' });

    const outage = cluster.restartRedis({ downMs: 4000 });
    await sleep(300);
    balancer.dropAll(); // lee reconnects while the hub cannot check revocations: handshake refused, UNAVAILABLE
    await eventually(() => !lee.connected, 'lee offline', 5000);
    await outage;
    await eventually(() => lee.connected, 'lee reconnected by itself after Redis came back', 30_000);
    expect(gaveUp).to.deep.equal([]);
    await patel.sendEnvelope(conv.id, { body: new TextEncoder().encode('after the outage') });
    await eventually(() => got.length === 1, 'lee receives what patel sends', 20_000);
  });
});
