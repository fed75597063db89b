/**
 * Fuzzing inside `npm test`: 10,000 socket cases over every client event (and unknown ones) plus
 * 1,500 REST requests, against one hub on memory adapters. `npm run fuzz` runs 100,000+.
 * Fixed seeds keep CI reproducible; a failure prints fast-check's counterexample and seed.
 */
import { expect } from 'chai';
import { fuzzRest, fuzzSocketEvents, startFuzzHub } from './fuzz-kit.js';

const SOCKET_CASES = 10_000;
const REST_CASES = 1_500;

describe('fuzzing (fast-check)', function () {
  this.timeout(180_000);

  it(`${SOCKET_CASES} arbitrary socket events: always a typed answer, never INTERNAL, nothing stored when refused, hub up`, async () => {
    const target = await startFuzzHub();
    try {
      const stats = await fuzzSocketEvents(target, SOCKET_CASES, 20261122);
      expect(stats.cases).to.equal(SOCKET_CASES);
      expect(stats.reconnects, 'the connection survived every case the parser accepted').to.be.at.most(stats.parserRefusals);
      const refused = Object.entries(stats.outcomes).filter(([k]) => !k.includes(' ')).reduce((n, [, v]) => n + v, 0);
      const accepted = SOCKET_CASES - refused;
      expect(accepted, 'near-valid payloads reach the handlers too').to.be.greaterThan(SOCKET_CASES / 20);
      console.log(`      socket fuzz: ${stats.cases} cases in ${stats.ms} ms; ${JSON.stringify(stats.outcomes)}`);
      const health = await fetch(`${target.url}/healthz`);
      expect(health.status).to.equal(200);
    } finally {
      await target.hub.close();
    }
  });

  it(`${REST_CASES} arbitrary REST requests: typed JSON errors with matching status, never INTERNAL`, async () => {
    const stats = await fuzzRest(REST_CASES, 20261122);
    expect(stats.cases).to.equal(REST_CASES);
    console.log(`      REST fuzz: ${stats.cases} cases in ${stats.ms} ms; ${JSON.stringify(stats.outcomes)}`);
  });
});
