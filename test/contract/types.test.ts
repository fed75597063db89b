/**
 * Type-level tests of the wire contract: they fail at `npm run build` (tsc) if the event maps,
 * schemas and inferred types drift apart, and at run time only trivially.
 */
import { expect } from 'chai';
import type { z } from 'zod';
import {
  ClientEvent,
  ErrorCode,
  ServerEvent,
  type Ack,
  type ClientToServerEvents,
  type Envelope,
  type EnvelopeSchema,
  type EnvelopeSendRequest,
  type SendResult,
  type ServerToClientEvents,
} from '@curbside/shared';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function assertType<_T extends true>(): void {}

describe('wire contract types', function () {
  it('every client event has a handler signature with an ack, and nothing else does', () => {
    assertType<Equal<keyof ClientToServerEvents, (typeof ClientEvent)[keyof typeof ClientEvent]>>();
    assertType<Equal<keyof ServerToClientEvents, (typeof ServerEvent)[keyof typeof ServerEvent]>>();
    assertType<Equal<Parameters<ClientToServerEvents['envelope:send']>[0], EnvelopeSendRequest>>();
    assertType<Equal<Parameters<Parameters<ClientToServerEvents['envelope:send']>[1]>[0], Ack<SendResult>>>();
    assertType<Equal<Envelope, z.output<typeof EnvelopeSchema>>>();
    assertType<Equal<Envelope['body'], Uint8Array | undefined>>();
    assertType<Equal<Envelope['ciphertext'], Uint8Array | undefined>>();
    const names = Object.values(ClientEvent);
    expect(new Set(names).size, 'event names are unique').to.equal(names.length);
  });

  it('error codes are their own names, so logs and switch statements read the same', () => {
    for (const [k, v] of Object.entries(ErrorCode)) expect(k).to.equal(v);
  });
});
