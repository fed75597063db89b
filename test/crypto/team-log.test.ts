import { expect } from 'chai';
import fc from 'fast-check';
import {
  CryptoError,
  TEAM_STATEMENT_SIGNATURE_PREFIX,
  applyStatement,
  canonicalJson,
  concatBytes,
  generateIdentityKeyPair,
  isCryptoError,
  parseTeamStatement,
  sign,
  signStatement,
  sodiumReady,
  statementHash,
  verifySignature,
  verifySignedStatement,
  type IdentityKeyPair,
  type SignedTeamStatement,
  type TeamState,
  type TeamStatement,
} from '../../client-sdk/src/crypto/index.js';
import { TeamRuleError, TeamStatementSchema, applyTeamStatement, type TeamRole } from '@curbside/shared';
import { expectCryptoError, text } from './helpers.js';

/**
 * The SDK checks a care team's log with one definition of a statement and one of the rules, both in
 * the shared contract the hub applies too (`TeamStatementSchema`, `applyTeamStatement`); the device adds
 * the canonical form, the hash and the signatures (client-sdk/src/crypto/team-log.ts). `replay` below
 * is what a device does with each statement it is handed, in order: parse, look up the actor device's
 * trusted key, verify, apply; a failing statement is reported and not applied.
 */
interface Rejection {
  index: number;
  code: string;
  reason: string;
}

function replayTeamLog(signed: readonly SignedTeamStatement[], keyOf: (userId: string, deviceId: string) => Uint8Array | undefined): { state: TeamState | undefined; rejected: Rejection[] } {
  let state: TeamState | undefined;
  const rejected: Rejection[] = [];
  signed.forEach((entry, index) => {
    try {
      if (typeof entry !== 'object' || entry === null || typeof entry.statement !== 'string' || !(entry.signature instanceof Uint8Array)) {
        throw new CryptoError('BAD_MESSAGE', 'not a signed statement');
      }
      const statement = parseTeamStatement(entry.statement);
      const who = `${statement.actorUserId}/${statement.actorDeviceId}`;
      const key = keyOf(statement.actorUserId, statement.actorDeviceId);
      if (key === undefined) throw new CryptoError('BAD_SIGNATURE', `statement ${statement.index}: signed by unknown device ${who}`);
      if (!verifySignedStatement(entry, key)) throw new CryptoError('BAD_SIGNATURE', `statement ${statement.index}: signature by ${who} does not verify`);
      state = applyStatement(state, statement);
    } catch (e) {
      if (e instanceof TeamRuleError) rejected.push({ index, code: 'BAD_MESSAGE', reason: e.message });
      else if (isCryptoError(e)) rejected.push({ index, code: e.code, reason: e.detail });
      else throw e;
    }
  });
  return { state, rejected };
}

type Device = { userId: string; deviceId: string; identity: IdentityKeyPair };

const TEAM = 'team-1';
let devices: Record<string, Device>;
/** The client's trusted device keys. */
const lookup = (userId: string, deviceId: string): Uint8Array | undefined =>
  Object.values(devices).find((d) => d.userId === userId && d.deviceId === deviceId)?.identity.publicKey;

type Change = Pick<TeamStatement, 'op'> & Partial<TeamStatement>;

/** Sealed details as the log carries them (the sealing itself: test/crypto/team-details.test.ts). */
const SEALED = { keyId: '5e'.repeat(16), box: 'A'.repeat(139) };
const RENAMED = { keyId: '7f'.repeat(16), box: 'B'.repeat(200) };

/** Builds and signs statements that chain from the state replayed so far (overridable field by field). */
class Log {
  readonly signed: SignedTeamStatement[] = [];
  state: TeamState | undefined;

  statement(by: Device, change: Change): TeamStatement {
    return {
      v: 1,
      teamId: TEAM,
      index: this.state ? this.state.index + 1 : 0,
      prev: this.state ? this.state.head : '',
      actorUserId: by.userId,
      actorDeviceId: by.deviceId,
      issuedAt: 1_700_000_000_000 + this.signed.length,
      ...change,
    };
  }

  /** Signs, appends and applies (throws if the statement is not valid). */
  push(by: Device, change: Change): this {
    const s = this.statement(by, change);
    this.state = applyStatement(this.state, s);
    this.signed.push(signStatement(s, by.identity.privateKey));
    return this;
  }

  clone(): Log {
    const l = new Log();
    l.signed.push(...this.signed);
    l.state = this.state;
    return l;
  }
}

/** Alice creates the team with Bob (member) and Carol (admin). */
function created(): Log {
  return new Log().push(devices.alice!, {
    op: 'create',
    sealedDetails: SEALED,
    members: [
      { userId: 'alice', role: 'owner' },
      { userId: 'bob', role: 'member' },
      { userId: 'carol', role: 'admin' },
    ],
  });
}

/**
 * Appends `bad` (signed by `signer`, default: its claimed actor) to `log` and expects replay to reject
 * exactly it with `code` and a reason matching `reason`, with the state as before.
 */
function expectRejected(log: Log, bad: SignedTeamStatement, code: 'BAD_MESSAGE' | 'BAD_SIGNATURE', reason: RegExp): void {
  const result = replayTeamLog([...log.signed, bad], lookup);
  expect(result.rejected).to.have.length(1);
  expect(result.rejected[0]!.index).to.equal(log.signed.length);
  expect(result.rejected[0]!.code, result.rejected[0]!.reason).to.equal(code);
  expect(result.rejected[0]!.reason).to.match(reason);
  expect(result.state).to.deep.equal(log.state);
}

function signedBy(log: Log, by: Device, change: Change, signer: Device = by): SignedTeamStatement {
  return signStatement(log.statement(by, change), signer.identity.privateKey);
}

/** What a malicious client could sign: signStatement refuses malformed statements, so sign the bytes directly. */
function rawSigned(log: Log, by: Device, change: Change): SignedTeamStatement {
  const statement = log.statement(by, change);
  expectCryptoError(() => signStatement(statement, by.identity.privateKey), 'BAD_MESSAGE');
  const canonical = canonicalJson(statement);
  return { statement: canonical, signature: sign(by.identity.privateKey, concatBytes(TEAM_STATEMENT_SIGNATURE_PREFIX, text(canonical))) };
}

describe('Care-team membership log', () => {
  before(async () => {
    await sodiumReady();
    devices = {};
    for (const [name, userId, deviceId] of [
      ['alice', 'alice', 'a-phone'],
      ['aliceLaptop', 'alice', 'a-laptop'],
      ['bob', 'bob', 'b-phone'],
      ['carol', 'carol', 'c-phone'],
      ['dave', 'dave', 'd-phone'],
      ['erin', 'erin', 'e-phone'],
    ] as const) {
      devices[name] = { userId, deviceId, identity: await generateIdentityKeyPair() };
    }
  });

  it('canonicalJson: sorted keys, no whitespace, independent of insertion order', () => {
    const a = { z: 1, a: [3, { y: true, b: null }], m: 'é"\n', u: undefined };
    const b = { m: 'é"\n', a: [3, { b: null, y: true }], z: 1 };
    expect(canonicalJson(a)).to.equal('{"a":[3,{"b":null,"y":true}],"m":"é\\"\\n","z":1}');
    expect(canonicalJson(b)).to.equal(canonicalJson(a));
    expect(canonicalJson({ B: 1, a: 2, _: 3, '10': 4, '9': 5 })).to.equal('{"10":4,"9":5,"B":1,"_":3,"a":2}');
    expect(() => canonicalJson({ x: NaN })).to.throw(TypeError);
    expect(() => canonicalJson([undefined])).to.throw(TypeError);
    expect(() => canonicalJson({ x: new Map() })).to.throw(TypeError);
    expect(() => canonicalJson({ x: 1n })).to.throw(TypeError);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => canonicalJson(cyclic)).to.throw(TypeError, /cycle/);
    const shared = { k: 1 };
    expect(canonicalJson([shared, shared])).to.equal('[{"k":1},{"k":1}]'); // repeated, not cyclic
  });

  it('canonicalJson property: any key order gives the same string, and it is a fixed point', () => {
    const shuffle = (v: unknown, seed: number): unknown => {
      if (Array.isArray(v)) return v.map((x, i) => shuffle(x, seed + i));
      if (v === null || typeof v !== 'object') return v;
      const entries = Object.entries(v);
      const rotated = entries.map((_, i) => entries[(i + seed) % entries.length]!).reverse();
      return Object.fromEntries(rotated.map(([k, x]) => [k, shuffle(x, seed + 1)]));
    };
    fc.assert(
      fc.property(fc.jsonValue(), fc.nat(), (value, seed) => {
        const c = canonicalJson(value);
        expect(canonicalJson(shuffle(value, seed))).to.equal(c);
        expect(canonicalJson(JSON.parse(c))).to.equal(c);
        expect(c).to.not.match(/^\s|\s$/);
      }),
      { numRuns: 300 },
    );
  });

  it('statementHash is hex SHA-256 of the UTF-8 bytes; signatures carry the documented label', () => {
    expect(statementHash('abc')).to.equal('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(new TextDecoder().decode(TEAM_STATEMENT_SIGNATURE_PREFIX)).to.equal('Curbside team statement v1\u0000');
    const log = created();
    const signed = log.signed[0]!;
    expect(signed.statement).to.equal(canonicalJson(JSON.parse(signed.statement)));
    expect(verifySignature(devices.alice!.identity.publicKey, concatBytes(TEAM_STATEMENT_SIGNATURE_PREFIX, text(signed.statement)), signed.signature)).to.equal(true);
    expect(verifySignature(devices.alice!.identity.publicKey, text(signed.statement), signed.signature)).to.equal(false);
    expect(verifySignedStatement(signed, devices.alice!.identity.publicKey)).to.equal(true);
    expect(verifySignedStatement(signed, devices.aliceLaptop!.identity.publicKey)).to.equal(false);
    expect(verifySignedStatement({ ...signed, statement: signed.statement.replace('"bob"', '"eve"') }, devices.alice!.identity.publicKey)).to.equal(false);
    expect(log.state!.head).to.equal(statementHash(signed.statement));
  });

  it('a full valid history (create, add, role, remove, leave) replays to the expected state', () => {
    const log = created()
      .push(devices.carol!, { op: 'add', userId: 'dave', role: 'member' }) // admin adds a member
      .push(devices.alice!, { op: 'add', userId: 'erin', role: 'admin' }) // owner adds an admin
      .push(devices.aliceLaptop!, { op: 'role', userId: 'bob', role: 'admin' }) // owner, from another device
      .push(devices.bob!, { op: 'remove', userId: 'dave' }) // admin removes a member
      .push(devices.alice!, { op: 'role', userId: 'erin', role: 'member' }) // owner demotes
      .push(devices.carol!, { op: 'remove', userId: 'carol' }) // leave
      .push(devices.erin!, { op: 'remove', userId: 'erin' }) // a plain member may leave too
      .push(devices.bob!, { op: 'add', userId: 'dave' }) // role defaults to member
      .push(devices.bob!, { op: 'details', sealedDetails: RENAMED }); // an admin renames the team
    const { state, rejected } = replayTeamLog(log.signed, lookup);
    expect(rejected).to.deep.equal([]);
    expect(state).to.deep.equal({
      teamId: TEAM,
      sealedDetails: RENAMED,
      index: 9,
      head: statementHash(log.signed[9]!.statement),
      members: { alice: 'owner', bob: 'admin', dave: 'member' },
    });
    expect(Object.keys(state!.members)).to.deep.equal(['alice', 'bob', 'dave']);
    expect(JSON.parse(JSON.stringify(state))).to.deep.equal(state); // JSON-safe
    // Each head is the hash of the statement, and each prev the previous head.
    for (let i = 1; i < log.signed.length; i++) {
      expect(parseTeamStatement(log.signed[i]!.statement).prev).to.equal(statementHash(log.signed[i - 1]!.statement));
    }
  });

  it('applyStatement does not modify the state it is given', () => {
    const log = created();
    const before = JSON.stringify(log.state);
    const next = applyStatement(log.state, log.statement(devices.alice!, { op: 'remove', userId: 'bob' }));
    expect(JSON.stringify(log.state)).to.equal(before);
    expect(next.members).to.deep.equal({ alice: 'owner', carol: 'admin' });
  });

  describe('every rule violation is rejected and not applied', () => {
    const cases: { name: string; by: string; change: Change; reason: RegExp; malformed?: true }[] = [
      { name: 'a plain member adds someone', by: 'bob', change: { op: 'add', userId: 'dave', role: 'member' }, reason: /only an owner or admin adds members/ },
      { name: 'an admin adds an admin', by: 'carol', change: { op: 'add', userId: 'dave', role: 'admin' }, reason: /only the owner adds admins/ },
      { name: 'anyone adds a second owner', by: 'alice', change: { op: 'add', userId: 'dave', role: 'owner' }, reason: /one owner/ },
      { name: 'an admin promotes a member', by: 'carol', change: { op: 'role', userId: 'bob', role: 'admin' }, reason: /only the owner changes roles/ },
      { name: 'a member promotes themselves', by: 'bob', change: { op: 'role', userId: 'bob', role: 'admin' }, reason: /only the owner changes roles/ },
      { name: 'the owner changes their own role', by: 'alice', change: { op: 'role', userId: 'alice', role: 'admin' }, reason: /keeps their role/ },
      { name: 'the owner makes someone owner', by: 'alice', change: { op: 'role', userId: 'bob', role: 'owner' }, reason: /sets admin or member/ },
      { name: 'a role change for a non-member', by: 'alice', change: { op: 'role', userId: 'dave', role: 'admin' }, reason: /dave is not a member/ },
      { name: 'an admin removes the owner', by: 'carol', change: { op: 'remove', userId: 'alice' }, reason: /owner cannot be removed by others/ },
      { name: 'a member removes the owner', by: 'bob', change: { op: 'remove', userId: 'alice' }, reason: /only an owner or admin removes members/ },
      { name: 'a member removes another member', by: 'bob', change: { op: 'remove', userId: 'carol' }, reason: /only an owner or admin removes members/ },
      { name: 'removing a non-member', by: 'alice', change: { op: 'remove', userId: 'dave' }, reason: /dave is not a member/ },
      { name: 'adding a member twice (duplicate member)', by: 'alice', change: { op: 'add', userId: 'bob', role: 'member' }, reason: /bob is already a member/ },
      { name: 'a non-member acts', by: 'dave', change: { op: 'add', userId: 'erin', role: 'member' }, reason: /the actor is not a member/ },
      { name: 'a wrong index (skips one)', by: 'alice', change: { op: 'add', userId: 'dave', index: 2 }, reason: /expected index 1/ },
      { name: 'a wrong index (repeats one)', by: 'alice', change: { op: 'add', userId: 'dave', index: 0 }, reason: /expected index 1/ },
      { name: 'a wrong prev', by: 'alice', change: { op: 'add', userId: 'dave', prev: 'ab'.repeat(32) }, reason: /does not chain/ },
      { name: 'an empty prev after the first statement', by: 'alice', change: { op: 'add', userId: 'dave', prev: '' }, reason: /does not chain/ },
      { name: 'a wrong teamId', by: 'alice', change: { op: 'add', userId: 'dave', teamId: 'team-2' }, reason: /wrong team/ },
      {
        name: 'a second create',
        by: 'alice',
        change: { op: 'create', sealedDetails: SEALED, members: [{ userId: 'alice', role: 'owner' }] },
        reason: /created once/,
      },
      { name: 'a role change without a role', by: 'alice', change: { op: 'role', userId: 'bob' }, reason: /sets admin or member/ },
      { name: 'an add without a userId', by: 'alice', change: { op: 'add', role: 'member' }, reason: /names no user/ },
      { name: 'an unknown field', by: 'alice', change: { op: 'add', userId: 'dave', note: 'x' } as Change, reason: /Unrecognized key: "note"/, malformed: true },
      { name: 'a bad role name', by: 'alice', change: { op: 'add', userId: 'dave', role: 'superuser' } as unknown as Change, reason: /role: Invalid/, malformed: true },
      { name: 'a plaintext title, even on an add', by: 'alice', change: { op: 'add', userId: 'dave', title: 'Ward 4B - Mr J. Smith' } as Change, reason: /Unrecognized key: "title"/, malformed: true },
      { name: 'a plain member renames the team', by: 'bob', change: { op: 'details', sealedDetails: RENAMED }, reason: /only an owner or admin changes the title/ },
      { name: 'a rename without sealed details', by: 'alice', change: { op: 'details' }, reason: /details carries the sealed title/ },
      { name: 'sealed details with a bad key id', by: 'alice', change: { op: 'details', sealedDetails: { ...RENAMED, keyId: 'XYZ' } }, reason: /sealedDetails\.keyId/, malformed: true },
      { name: 'sealed details too short to be a box', by: 'alice', change: { op: 'details', sealedDetails: { ...RENAMED, box: 'abc' } }, reason: /sealedDetails\.box/, malformed: true },
      { name: 'sealed details with a field of their own', by: 'alice', change: { op: 'details', sealedDetails: { ...RENAMED, title: 'x' } as typeof RENAMED }, reason: /sealedDetails: Unrecognized key: "title"/, malformed: true },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const log = created();
        const bad = c.malformed ? rawSigned(log, devices[c.by]!, c.change) : signedBy(log, devices[c.by]!, c.change);
        expectRejected(log, bad, 'BAD_MESSAGE', c.reason);
      });
    }

    it('the admin-only rules hold from a longer history too (an admin removes another admin)', () => {
      const log = created().push(devices.alice!, { op: 'add', userId: 'dave', role: 'admin' });
      expectRejected(log, signedBy(log, devices.carol!, { op: 'remove', userId: 'dave' }), 'BAD_MESSAGE', /only the owner removes admins/);
    });

    const creates: { name: string; by: string; members: { userId: string; role: 'owner' | 'admin' | 'member' }[]; reason: RegExp }[] = [
      { name: 'create by someone who is not the owner', by: 'bob', members: [{ userId: 'alice', role: 'owner' }, { userId: 'bob', role: 'member' }], reason: /creator must be the one owner/ },
      { name: 'create with two owners', by: 'alice', members: [{ userId: 'alice', role: 'owner' }, { userId: 'bob', role: 'owner' }], reason: /creator must be the one owner/ },
      { name: 'create with no owner', by: 'alice', members: [{ userId: 'alice', role: 'admin' }], reason: /creator must be the one owner/ },
      { name: 'create listing a member twice', by: 'alice', members: [{ userId: 'alice', role: 'owner' }, { userId: 'bob', role: 'member' }, { userId: 'bob', role: 'admin' }], reason: /bob is listed twice/ },
    ];
    for (const c of creates) {
      it(c.name, () => {
        const log = new Log();
        expectRejected(log, signedBy(log, devices[c.by]!, { op: 'create', sealedDetails: SEALED, members: c.members }), 'BAD_MESSAGE', c.reason);
      });
    }

    it('a create that is not index 0, and a change before any create', () => {
      const log = new Log();
      const members = [{ userId: 'alice', role: 'owner' as const }];
      expectRejected(log, signedBy(log, devices.alice!, { op: 'create', sealedDetails: SEALED, members, index: 1 }), 'BAD_MESSAGE', /create must be index 0/);
      expectRejected(log, signedBy(log, devices.alice!, { op: 'add', userId: 'bob' }), 'BAD_MESSAGE', /does not exist yet/);
    });

    it('a forged signature (statement or signature edited by the hub)', () => {
      const log = created();
      const good = signedBy(log, devices.alice!, { op: 'add', userId: 'dave' });
      const sig = good.signature.slice();
      sig[10]! ^= 1;
      expectRejected(log, { ...good, signature: sig }, 'BAD_SIGNATURE', /does not verify/);
      expectRejected(log, { ...good, statement: good.statement.replace('"dave"', '"mallory"') }, 'BAD_SIGNATURE', /does not verify/);
      expectRejected(log, { ...good, signature: new Uint8Array(63) }, 'BAD_SIGNATURE', /does not verify/);
      // The genuine one is accepted.
      expect(replayTeamLog([...log.signed, good], lookup).rejected).to.deep.equal([]);
    });

    it('a signature by a different device of the actor than the one named', () => {
      const log = created();
      expectRejected(log, signedBy(log, devices.alice!, { op: 'add', userId: 'dave' }, devices.aliceLaptop!), 'BAD_SIGNATURE', /alice\/a-phone does not verify/);
    });

    it('an unknown device', () => {
      const log = created();
      const stranger: Device = { ...devices.alice!, deviceId: 'a-tablet' };
      expectRejected(log, signedBy(log, stranger, { op: 'add', userId: 'dave' }), 'BAD_SIGNATURE', /unknown device alice\/a-tablet/);
    });

    it('malformed entries: not JSON, not canonical, unknown version, not a signed statement', () => {
      const log = created();
      const good = signedBy(log, devices.alice!, { op: 'add', userId: 'dave' });
      const pretty = JSON.stringify(JSON.parse(good.statement), null, 1);
      expectRejected(log, { ...good, statement: pretty }, 'BAD_MESSAGE', /not in canonical form/);
      expectRejected(log, { ...good, statement: '{"v":1' }, 'BAD_MESSAGE', /not JSON/);
      expectRejected(log, { ...good, statement: good.statement.replace('"v":1', '"v":2') }, 'BAD_MESSAGE', /v: Invalid/);
      expectRejected(log, { statement: 42 } as unknown as SignedTeamStatement, 'BAD_MESSAGE', /not a signed statement/);
      expectCryptoError(() => parseTeamStatement('{"v":1,"v":1}'), 'BAD_MESSAGE');
      expectCryptoError(() => signStatement({ ...log.statement(devices.alice!, { op: 'add', userId: 'has space' }) }, devices.alice!.identity.privateKey), 'BAD_MESSAGE');
    });
  });

  it('fields another op uses are accepted and ignored (as the hub accepts them)', () => {
    const log = created()
      .push(devices.alice!, { op: 'add', userId: 'dave', sealedDetails: RENAMED })
      .push(devices.alice!, { op: 'remove', userId: 'dave', role: 'admin', members: [{ userId: 'mallory', role: 'owner' }] });
    expect(replayTeamLog(log.signed, lookup).rejected).to.deep.equal([]);
    expect(log.state!.sealedDetails).to.deep.equal(SEALED);
    expect(log.state!.members).to.deep.equal({ alice: 'owner', bob: 'member', carol: 'admin' });
  });

  it('property: the device accepts exactly the statements the hub accepts (its parse and the hub’s schema and canonical check), with the same state', () => {
    const users = ['alice', 'bob', 'carol', 'dave', 'erin'];
    const user = fc.constantFrom(...users);
    const role = fc.constantFrom<TeamRole | undefined>('owner', 'admin', 'member', undefined);
    const step = fc.record({
      op: fc.constantFrom<TeamStatement['op']>('add', 'add', 'remove', 'role', 'role', 'create', 'details'),
      actor: user,
      target: user,
      role,
      members: fc.uniqueArray(fc.record({ userId: user, role: fc.constantFrom<TeamRole>('owner', 'admin', 'member') }), { maxLength: 4 }),
      fault: fc.constantFrom('none', 'none', 'none', 'none', 'index', 'prev', 'team', 'sealed', 'title', 'noTarget'),
    });
    const hubApply = (state: TeamState | undefined, canonical: string): TeamState => {
      const parsed = TeamStatementSchema.safeParse(JSON.parse(canonical));
      if (!parsed.success) throw new TeamRuleError('schema');
      if (canonicalJson(parsed.data) !== canonical) throw new TeamRuleError('not canonical');
      return applyTeamStatement(state, parsed.data, statementHash(canonical));
    };
    let accepted = 0;
    let refused = 0;
    const acceptedOps = new Set<string>();
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 25 }), (steps) => {
        let mine: TeamState | undefined;
        let hub: TeamState | undefined;
        steps.forEach((st, i) => {
          const create = i === 0 || st.op === 'create';
          const statement: Record<string, unknown> = {
            v: 1,
            teamId: st.fault === 'team' ? 'team-2' : TEAM,
            index: (mine ? mine.index + 1 : 0) + (st.fault === 'index' ? 1 : 0),
            prev: st.fault === 'prev' ? 'ab'.repeat(32) : (mine?.head ?? ''),
            op: create ? 'create' : st.op,
            actorUserId: st.actor,
            actorDeviceId: 'd1',
            issuedAt: i,
          };
          const badSeal = { keyId: SEALED.keyId, box: `${SEALED.box}=` };
          if (create) {
            statement.sealedDetails = st.fault === 'sealed' ? badSeal : SEALED;
            if (st.fault === 'title') statement.title = 'T';
            statement.members = i === 0 && st.fault === 'none' ? [{ userId: st.actor, role: 'owner' }, ...st.members.filter((m) => m.userId !== st.actor && m.role !== 'owner')] : st.members;
          } else {
            if (st.fault !== 'noTarget') statement.userId = st.target;
            if (st.role !== undefined) statement.role = st.role;
            if (st.op === 'details' || st.fault === 'sealed') statement.sealedDetails = st.fault === 'sealed' ? badSeal : RENAMED;
            if (st.fault === 'title') statement.title = 'x';
          }
          const canonical = canonicalJson(statement);
          let mineResult: TeamState | string;
          let hubResult: TeamState | string;
          try {
            mineResult = applyStatement(mine, parseTeamStatement(canonical));
          } catch (e) {
            expect(e instanceof CryptoError || e instanceof TeamRuleError, String(e)).to.equal(true);
            mineResult = e instanceof CryptoError ? e.detail : (e as Error).message;
          }
          try {
            hubResult = hubApply(hub, canonical);
          } catch (e) {
            expect(e).to.be.instanceOf(TeamRuleError);
            hubResult = (e as Error).message;
          }
          const verdicts = `${canonical}\nclient: ${typeof mineResult === 'string' ? mineResult : 'accepted'}\nhub: ${typeof hubResult === 'string' ? hubResult : 'accepted'}`;
          expect(typeof mineResult, verdicts).to.equal(typeof hubResult);
          if (typeof mineResult !== 'string') {
            expect(mineResult, verdicts).to.deep.equal(hubResult);
            mine = mineResult;
            hub = hubResult as TeamState;
            accepted++;
            acceptedOps.add(String(statement.op));
          } else {
            refused++;
          }
        });
      }),
      // A fixed seed: the coverage checks below (every op accepted at least once) must not depend on luck.
      { numRuns: 300, seed: 20261122 },
    );
    expect(accepted).to.be.greaterThan(50);
    expect(refused).to.be.greaterThan(200);
    expect([...acceptedOps].sort()).to.deep.equal(['add', 'create', 'details', 'remove', 'role']);
  });

  it('a hub that inserts statements of its own is caught, and the real history still applies', async () => {
    const hubKey = await generateIdentityKeyPair();
    const log = created();
    // The hub adds Mallory as if Alice did it: from a device of its own, and claiming Alice's real device.
    const asNewDevice = signStatement(log.statement({ userId: 'alice', deviceId: 'hub-device', identity: hubKey }, { op: 'add', userId: 'mallory', role: 'admin' }), hubKey.privateKey);
    const asAlice = signStatement(log.statement(devices.alice!, { op: 'add', userId: 'mallory', role: 'admin' }), hubKey.privateKey);
    // The real next statements chain from the genuine state, not from the inserted ones.
    const real = log.clone().push(devices.alice!, { op: 'add', userId: 'dave' }).push(devices.carol!, { op: 'remove', userId: 'bob' });
    const tampered = [log.signed[0]!, asNewDevice, asAlice, real.signed[1]!, real.signed[2]!];
    const { state, rejected } = replayTeamLog(tampered, lookup);
    expect(rejected.map((r) => [r.index, r.code])).to.deep.equal([
      [1, 'BAD_SIGNATURE'],
      [2, 'BAD_SIGNATURE'],
    ]);
    expect(rejected[0]!.reason).to.match(/unknown device alice\/hub-device/);
    expect(state).to.deep.equal(real.state);
    expect(state!.members).to.not.have.property('mallory');
  });

  it('once a statement is rejected, the statements chaining from it are rejected and reported too', () => {
    const log = created()
      .push(devices.alice!, { op: 'add', userId: 'dave' })
      .push(devices.dave!, { op: 'remove', userId: 'dave' })
      .push(devices.alice!, { op: 'add', userId: 'erin' });
    // The client does not trust Alice's phone after the create (say it was revoked): statement 1 fails, then 2 and 3.
    expect(replayTeamLog(log.signed, lookup).rejected).to.deep.equal([]);
    let calls = 0;
    const failAfterCreate = (u: string, d: string) => (calls++ > 0 && u === 'alice' && d === 'a-phone' ? undefined : lookup(u, d));
    const { state, rejected } = replayTeamLog(log.signed, failAfterCreate);
    expect(rejected.map((r) => r.index)).to.deep.equal([1, 2, 3]);
    expect(rejected[0]!.reason).to.match(/unknown device/);
    expect(rejected[1]!.reason).to.match(/expected index 1/);
    expect(state!.index).to.equal(0);
    // A reordered log: everything after the swap point fails.
    const swapped = [log.signed[0]!, log.signed[2]!, log.signed[1]!, log.signed[3]!];
    const r2 = replayTeamLog(swapped, lookup);
    expect(r2.rejected.map((r) => r.index)).to.deep.equal([1, 3]);
    expect(r2.state!.index).to.equal(1);
    expect(r2.state!.members).to.have.property('dave');
  });

  it('a lookup that throws is a programming error, not a rejection', () => {
    const log = created();
    expect(() =>
      replayTeamLog(log.signed, () => {
        throw new Error('store offline');
      }),
    ).to.throw(Error, 'store offline');
  });
});
