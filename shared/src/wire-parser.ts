import { Emitter } from '@socket.io/component-emitter';
import { decode, encode } from '@msgpack/msgpack';

/**
 * The socket.io parser both the hub and the SDK use: each packet is one MessagePack frame.
 *
 * Why not socket.io's default parser: it sends every binary field as a separate frame and, since
 * its security fix, refuses packets with more than 10 of them — a key upload (up to 100 prekeys)
 * or a sync page (up to 500 envelopes) has far more. Raising that limit would let one packet
 * buffer hundreds of frames of `maxHttpBufferSize` each. With MessagePack a packet is a single
 * frame, bounded by `maxHttpBufferSize`, and binary stays binary (`Uint8Array` on both sides).
 */

/** socket.io packet types (socket.io-parser's `PacketType`). Binary variants are never produced here. */
const PacketType = { CONNECT: 0, DISCONNECT: 1, EVENT: 2, ACK: 3, CONNECT_ERROR: 4 } as const;

/** socket.io's own reserved event names, which a client must not send as events. */
const RESERVED_EVENTS = new Set(['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener']);

interface Packet {
  type: number;
  nsp: string;
  data?: unknown;
  id?: number;
}

const isObject = (v: unknown): boolean => Object.prototype.toString.call(v) === '[object Object]';

function isPacketValid(p: Packet): boolean {
  if (typeof p.nsp !== 'string') return false;
  if (p.id !== undefined && !Number.isInteger(p.id)) return false;
  switch (p.type) {
    case PacketType.CONNECT:
      return p.data === undefined || isObject(p.data);
    case PacketType.DISCONNECT:
      return p.data === undefined;
    case PacketType.EVENT:
      return Array.isArray(p.data) && (typeof p.data[0] === 'number' || (typeof p.data[0] === 'string' && !RESERVED_EVENTS.has(p.data[0])));
    case PacketType.ACK:
      return Array.isArray(p.data);
    case PacketType.CONNECT_ERROR:
      return typeof p.data === 'string' || isObject(p.data);
    default:
      return false;
  }
}

export class Encoder {
  /** One packet, one binary frame. */
  encode(packet: Packet): Uint8Array[] {
    const out: Packet = { type: packet.type, nsp: packet.nsp };
    if (packet.data !== undefined) out.data = packet.data;
    if (packet.id !== undefined) out.id = packet.id;
    return [encode(out, { ignoreUndefined: true })];
  }
}

export class Decoder extends Emitter<Record<string, never>, Record<string, never>, { decoded: (packet: Packet) => void }> {
  /** Throws on anything that is not a well-formed packet; socket.io then closes the connection. */
  add(chunk: unknown): void {
    if (typeof chunk === 'string') throw new Error('Curbside expects binary MessagePack frames; got text');
    const bytes = chunk instanceof Uint8Array ? chunk : chunk instanceof ArrayBuffer ? new Uint8Array(chunk) : undefined;
    if (!bytes) throw new Error('unknown frame type');
    const packet = decode(bytes) as Packet;
    if (!isObject(packet) || !isPacketValid(packet)) throw new Error('invalid socket.io packet');
    this.emitReserved('decoded', packet);
  }

  destroy(): void {}
}

/** Pass as `parser` to socket.io's `Server` and to socket.io-client's `io()`. */
export const wireParser = { Encoder, Decoder } as const;
