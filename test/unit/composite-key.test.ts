/**
 * Every composite-key builder is injective: distinct tuples give distinct keys (security round 2,
 * finding 1: `u:<org>:<user>` rooms let org `hosp` user `icu:dr-lee` share org `hosp:icu` user
 * `dr-lee`'s room). The builders are the product's own; the property runs over hostile strings
 * (separators, `%`, spaces, control characters, empty parts) as well as ids the contract accepts.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { IdSchema, Rooms, SecurityRooms, compositeKey, decodeCompositeKey } from '@curbside/shared';
import { rateKey } from '@curbside/server';
import { docKey } from '../../server/src/adapters/mongo/models.js';
import { directKey, groupKey } from '../../server/src/ports/storage-rules.js';

/** Strings built from the characters that break naive joins, plus anything else. */
const hostile = fc.oneof(
  fc.string({ unit: fc.constantFrom(':', ' ', '%', '\u0000', '\n', '2', '0', 'a', 'A', '|', '/'), maxLength: 8 }),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'grapheme', maxLength: 6 }),
);
const validId = fc.string({ unit: fc.constantFrom(':', '%', 'a', 'b', '-', '.', '|', '2', '0'), minLength: 1, maxLength: 8 });

type Builder = { name: string; arity: number; build: (parts: string[]) => string };
const builders: Builder[] = [
  { name: 'compositeKey/3', arity: 3, build: (p) => compositeKey(...p) },
  { name: 'Rooms.device', arity: 2, build: ([o, d]) => Rooms.device(o!, d!) },
  { name: 'Rooms.user', arity: 2, build: ([o, u]) => Rooms.user(o!, u!) },
  { name: 'SecurityRooms.token', arity: 2, build: ([o, t]) => SecurityRooms.token(o!, t!) },
  { name: 'rateKey', arity: 2, build: (p) => rateKey(...p) },
  { name: 'docKey', arity: 3, build: (p) => docKey(...p) },
  { name: 'directKey', arity: 2, build: (p) => directKey(p) },
  { name: 'groupKey', arity: 1, build: ([id]) => groupKey(id!) },
];

describe('composite keys: one encoder, injective for every builder', function () {
  for (const b of builders) {
    it(`${b.name}: distinct tuples give distinct keys`, () => {
      fc.assert(
        fc.property(fc.array(hostile, { minLength: b.arity, maxLength: b.arity }), fc.array(hostile, { minLength: b.arity, maxLength: b.arity }), (x, y) => {
          // directKey is of an unordered pair: the same two members in either order are one conversation.
          const same = b.name === 'directKey' ? JSON.stringify([...x].sort()) === JSON.stringify([...y].sort()) : JSON.stringify(x) === JSON.stringify(y);
          expect(b.build(x) === b.build(y), `${JSON.stringify(x)} vs ${JSON.stringify(y)}`).to.equal(same);
        }),
        { numRuns: 2000 },
      );
    });
  }

  it('the ids of the finding stay apart in every builder, and different builders never share a key', () => {
    const keys = new Map<string, string>();
    for (const b of builders.filter((x) => x.arity === 2)) {
      for (const tuple of [['hosp', 'icu:dr-lee'], ['hosp:icu', 'dr-lee']]) {
        const k = b.build(tuple);
        expect(keys.has(k), `${b.name}${JSON.stringify(tuple)} collides with ${keys.get(k)}`).to.equal(false);
        keys.set(k, `${b.name}${JSON.stringify(tuple)}`);
      }
    }
  });

  it('decodes back to the tuple (so it is injective by construction) and holds no space or control character inside a part', () => {
    fc.assert(
      fc.property(fc.array(hostile, { minLength: 1, maxLength: 5 }), (parts) => {
        const key = compositeKey(...parts);
        expect(decodeCompositeKey(key)).to.deep.equal(parts);
        expect(key.split(' ')).to.have.length(parts.length);
        expect(/[\x00-\x1f\x7f]/.test(key), 'no control character (PostgreSQL jsonb refuses NUL)').to.equal(false);
      }),
      { numRuns: 2000 },
    );
  });

  it('keys of ids the contract accepts read as the ids joined by spaces, unchanged from before (no data migration for them)', () => {
    fc.assert(
      fc.property(fc.array(validId.filter((s) => !s.includes('%') && IdSchema.safeParse(s).success), { minLength: 1, maxLength: 4 }), (ids) => {
        expect(compositeKey(...ids)).to.equal(ids.join(' '));
      }),
    );
  });

  it('refuses what no tuple encodes to, and zero parts', () => {
    expect(() => compositeKey()).to.throw(TypeError);
    for (const bad of ['a%2', 'a%zz b', 'a\u0000b', 'a%61']) expect(() => decodeCompositeKey(bad), bad).to.throw(TypeError);
  });

  it('the contract refuses the encoder’s separator and control characters in every id', () => {
    for (const id of ['dr lee', 'a\u0000b', 'tab\there', 'line\nbreak', '']) expect(IdSchema.safeParse(id).success, JSON.stringify(id)).to.equal(false);
    expect(IdSchema.safeParse('icu:dr-lee').success).to.equal(true);
  });
});
