/**
 * Load shedding (`server/src/realtime/admission.ts`): at most `limit` requests in flight; past it a
 * typed, retryable refusal with a spread-out retry hint, counted and warned of (not once per request);
 * places come back when answered, and from handlers stuck past the hold limit. A fake clock: no timing.
 */
import { expect } from 'chai';
import { ErrorCode } from '@curbside/shared';
import { Admission, SHED_RETRY_AFTER_MS, type Admitted } from '../../server/src/realtime/admission.js';

function setup(limit: number, random = 0.5) {
  let now = 1_000;
  const logs: Array<{ level: string; obj: Record<string, unknown>; msg: string }> = [];
  const shed: string[] = [];
  const admission = new Admission(limit, {
    logger: {
      warn: (obj: Record<string, unknown>, msg: string) => logs.push({ level: 'warn', obj, msg }),
      error: (obj: Record<string, unknown>, msg: string) => logs.push({ level: 'error', obj, msg }),
    } as never,
    metrics: { requestsShed: { inc: (labels: { event: string }) => shed.push(labels.event) } } as never,
    random: () => random,
    now: () => now,
    holdLimitMs: 60_000,
  });
  return { admission, logs, shed, tick: (ms: number) => (now += ms) };
}

function admitted(a: Admitted): () => void {
  expect(a.ok, 'admitted').to.equal(true);
  return (a as { release: () => void }).release;
}

describe('load shedding: Admission', function () {
  it('admits up to the limit, refuses past it with a typed retryable error, and admits again once one is answered', function () {
    const { admission, shed } = setup(2);
    const first = admitted(admission.admit('envelope:send'));
    admitted(admission.admit('sync:fetch'));
    const refused = admission.admit('envelope:send');
    expect(refused.ok).to.equal(false);
    const error = (refused as { error: { code: string; details?: Record<string, unknown> } }).error;
    expect(error.code).to.equal(ErrorCode.UNAVAILABLE);
    expect(error.details).to.deep.equal({ retryAfterMs: Math.round(SHED_RETRY_AFTER_MS * 1.5), overloaded: true });
    expect(shed).to.deep.equal(['envelope:send']);
    expect(admission.inFlight).to.equal(2);
    first();
    first(); // a second release of the same place frees nothing more
    expect(admission.inFlight).to.equal(1);
    admitted(admission.admit('envelope:send'));
    expect(admission.admit('typing').ok).to.equal(false);
  });

  it('retry hints spread between one and two times the base', function () {
    const hint = (random: number) => {
      const a = setup(0, random).admission.admit('x');
      return a.ok ? undefined : a.error.details?.['retryAfterMs'];
    };
    expect(hint(0)).to.equal(SHED_RETRY_AFTER_MS);
    expect(hint(0.999)).to.equal(Math.round(SHED_RETRY_AFTER_MS * 1.999));
  });

  it('warns of overload once per ten seconds, with how many were shed meanwhile', function () {
    const { admission, logs, tick } = setup(0);
    for (let i = 0; i < 5; i++) admission.admit('envelope:send');
    tick(10_000);
    admission.admit('envelope:send');
    const warnings = logs.filter((l) => l.level === 'warn');
    expect(warnings.map((w) => w.obj['shed'])).to.deep.equal([1, 5]);
    expect(warnings[0]!.msg).to.include('MAX_IN_FLIGHT');
  });

  it('gives back the places of requests stuck past the hold limit, oldest first, and says which events', function () {
    const { admission, logs, tick } = setup(3);
    admitted(admission.admit('keys:claim'));
    tick(30_000);
    admitted(admission.admit('envelope:send'));
    const answered = admitted(admission.admit('sync:fetch'));
    answered();
    admitted(admission.admit('sync:fetch'));
    // Full, but nothing is older than the hold limit: refused, nothing reclaimed.
    expect(admission.admit('typing').ok).to.equal(false);
    expect(logs.filter((l) => l.level === 'error')).to.deep.equal([]);
    // The first is now past the limit; the others are not.
    tick(30_000);
    admitted(admission.admit('typing'));
    expect(admission.inFlight).to.equal(3);
    const errors = logs.filter((l) => l.level === 'error');
    expect(errors).to.have.length(1);
    expect(errors[0]!.obj).to.include({ reclaimed: 1 });
    expect(errors[0]!.obj['events']).to.deep.equal(['keys:claim']);
    expect(admission.admit('typing').ok).to.equal(false);
  });
});
