/**
 * The short fault run of issue 5 ("Nothing lost"): three hub processes, a private Redis and a private
 * FerretDB; end-to-end-encrypted clients send 1:1 and care-team messages while the database is
 * restarted, a node is killed (-9) and restarted, Redis is restarted, and a node is killed again. Then the
 * invariant checker (scripts/faults/checker.ts) proves nothing was lost, duplicated, reordered or left
 * undecryptable. The long run is `npm run faults` (docs/faults.md).
 *
 * Waits are generous and bounded (recovery 60 s per fault, settling and resync 20-30 s each): they
 * absorb a loaded machine, they do not measure speed.
 */
import { expect } from 'chai';
import { formatReport } from '../../scripts/faults/checker.js';
import { runScenario } from '../../scripts/faults/scenario.js';

describe('fault injection on a three-node cluster (short run)', function () {
  this.timeout(300_000);

  it('restart the database, kill -9 and restart a node, restart Redis, kill a node again: nothing acked is lost, duplicated, reordered or undecryptable', async () => {
    const lines: string[] = [];
    const { report } = await runScenario({
      // The database restart comes first, more than 10 s after the nodes started: a node restarted a few
      // seconds before a database restart can lose its database for good (docs/faults.md, open bug 3).
      faults: ['restart-db', 'kill-node', 'restart-redis', 'kill-node'],
      faultsPerRound: 4,
      warmupMs: 12_000,
      seed: 20261122,
      log: (l) => lines.push(l),
    });
    const summary = formatReport(report);
    const context = `\n${summary}\n--- run log ---\n${lines.slice(-40).join('\n')}`;
    console.log(
      `      ${report.faultsInjected} faults, ${report.messages.acked} messages acked, ${report.deliveries.shown}/${report.deliveries.expected} deliveries; ` +
        `lost ${report.lost}, duplicates ${report.duplicates.shownTwice + report.duplicates.storedTwice}, gaps ${report.gaps}, inversions ${report.inversions}, decryption failures ${report.decryptFailures}`,
    );

    expect(report.faultsInjected).to.equal(4);
    expect(report.messages.acked, `messages acked${context}`).to.be.at.least(10);
    expect(report.lost, `lost${context}`).to.equal(0);
    expect(report.ackedNotStored, `acked but not stored${context}`).to.equal(0);
    expect(report.duplicates, `duplicates${context}`).to.deep.equal({ shownTwice: 0, storedTwice: 0 });
    expect(report.gaps, `gaps${context}`).to.equal(0);
    expect(report.inversions, `inversions${context}`).to.equal(0);
    expect(report.decryptFailures, `decryption failures${context}`).to.equal(0);
    expect(report.ackMismatches, `ack mismatches${context}`).to.equal(0);
    // The two bugs this run found (test/faults/outage-regressions.test.ts): a Redis restart ended hub
    // processes, and the SDK stopped reconnecting after a handshake refused with UNAVAILABLE.
    expect(report.nodes.unexpectedExits, `hub processes that died by themselves${context}`).to.equal(0);
    expect(report.clients.sdkGaveUp, `clients that stopped reconnecting${context}`).to.equal(0);
    expect(report.failures, context).to.deep.equal([]);
  });
});
