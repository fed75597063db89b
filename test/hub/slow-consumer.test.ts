import { expect } from 'chai';
import type { Socket as NetSocket } from 'node:net';
import type { CurbsideClient, Envelope } from '@curbside/client-sdk';
import { defaultSecurityConfig } from '@curbside/server';
import { HubHarness, eventually } from '../support/hub.js';

/** The TCP socket under a connected SDK client (socket.io-client → engine.io → ws). */
function tcpOf(client: CurbsideClient): NetSocket {
  const socket = (client as unknown as { connection: { socket: { io: { engine: { transport: { ws: { _socket: NetSocket } } } } } } }).connection.socket;
  return socket.io.engine.transport.ws._socket;
}

describe('a slow consumer', function () {
  const harness = new HubHarness();
  afterEach(() => harness.cleanup());

  it('is dropped once it falls too far behind, keeping hub memory bounded, and resyncs everything after', async () => {
    const t = await harness.start('memory', undefined, (c) => {
      c.slowConsumerMaxBytes = 512 * 1024;
      // The sender may flood here: this test is about the slow reader, not the send rate limit.
      const security = defaultSecurityConfig('dev');
      c.security = { ...security, rateLimits: { ...security.rateLimits, envelopeSend: { points: 100_000, durationSec: 1 } } };
    });
    const lee = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' }, { e2ee: false });
    const slow = t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' }, { e2ee: false });
    const got: Envelope[] = [];
    const reasons: string[] = [];
    slow.on('envelope', (e) => got.push(e));
    slow.on('disconnected', (d) => reasons.push(d.reason));
    await Promise.all([lee.connect(), slow.connect()]);
    const conv = await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });

    const tcp = tcpOf(slow);
    tcp.pause(); // the device stops reading: the hub's unsent data for it grows
    const body = new Uint8Array(60 * 1024).fill(7);
    let sent = 0;
    const hubSide = () => [...t.hub.io.of('/').sockets.values()].filter((s) => s.data.deviceId === 'patel-laptop');
    // Bounded in count and time; the kernel's socket buffers absorb the first few MiB.
    const deadline = Date.now() + 20_000;
    while (hubSide().length > 0 && sent < 1000 && Date.now() < deadline) {
      await lee.sendEnvelope(conv.id, { body });
      sent++;
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(hubSide(), 'the hub dropped the slow socket').to.have.length(0);
    await eventually(() => t.logs.text().includes('dropping a slow consumer'), 'logged');

    tcp.resume();
    await eventually(() => got.length === sent, `the slow device resynced all ${sent} messages`, 20_000);
    expect(got.map((e) => e.seq)).to.deep.equal(Array.from({ length: sent }, (_, i) => i + 1));
    expect(reasons.length).to.be.greaterThan(0);
  });
});
