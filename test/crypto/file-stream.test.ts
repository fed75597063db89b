/**
 * Attachment stream encryption (client-sdk/src/attachments/file-crypto.ts): whatever the hub, the
 * network or the database does to the ciphertext, the reader either gets the exact file or an
 * ATTACHMENT_TAMPERED error before the last plaintext byte: never a silently shorter or different file.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { sodiumReady } from '../../client-sdk/src/crypto/index.js';
import { CHUNK_OVERHEAD, cipherSizeOf, decryptFile, encryptFile } from '../../client-sdk/src/attachments/file-crypto.js';

const CHUNK = 1024; // small chunks: many of them in a small file

async function encrypt(plain: Uint8Array, pieces = 7) {
  const { chunks, info } = encryptFile(
    (async function* () {
      // Uneven input pieces: chunking must not depend on how the caller's stream is cut.
      for (let i = 0; i < plain.length; i += Math.ceil(plain.length / pieces) || 1) yield plain.subarray(i, i + (Math.ceil(plain.length / pieces) || 1));
    })(),
    CHUNK,
  );
  const out: Uint8Array[] = [];
  for await (const c of chunks) out.push(c);
  return { chunks: out, key: info.key, header: info.header, hash: info.hash!, size: info.size!, cipherSize: info.cipherSize! };
}

async function decrypt(chunks: readonly Uint8Array[], e: Awaited<ReturnType<typeof encrypt>>, cipherSize = e.cipherSize): Promise<{ plain: Buffer; error?: { code?: string; details?: { reason?: string } } }> {
  const got: Uint8Array[] = [];
  try {
    const flat = Buffer.concat(chunks);
    // Delivered in odd-sized network pieces.
    const network = (async function* () {
      for (let i = 0; i < flat.length; i += 999) yield flat.subarray(i, i + 999);
    })();
    for await (const p of decryptFile(network, { key: e.key, header: e.header, hash: e.hash, cipherSize, chunkBytes: CHUNK })) got.push(p);
    return { plain: Buffer.concat(got) };
  } catch (error) {
    return { plain: Buffer.concat(got), error: error as { code?: string } };
  }
}

describe('attachment stream encryption (secretstream, TAG_FINAL, ciphertext hash)', function () {
  before(() => sodiumReady());

  for (const size of [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 10 * CHUNK, 10 * CHUNK + 17]) {
    it(`round-trips ${size} bytes exactly; the ciphertext is ${CHUNK_OVERHEAD} bytes per chunk longer`, async () => {
      const plain = randomBytes(size);
      const e = await encrypt(plain);
      expect(e.size).to.equal(size);
      expect(e.cipherSize).to.equal(cipherSizeOf(size, CHUNK));
      const { plain: back, error } = await decrypt(e.chunks, e);
      expect(error).to.equal(undefined);
      expect(back.equals(plain)).to.equal(true);
    });
  }

  it('each file gets its own key and header', async () => {
    const plain = randomBytes(100);
    const [a, b] = [await encrypt(plain), await encrypt(plain)];
    expect(Buffer.from(a.key).equals(Buffer.from(b.key))).to.equal(false);
    expect(Buffer.concat(a.chunks).equals(Buffer.concat(b.chunks))).to.equal(false);
  });

  const tamperings: Array<[string, (c: Uint8Array[]) => Uint8Array[], number | undefined]> = [
    ['a flipped byte', (c) => c.map((x, i) => (i === 3 ? Uint8Array.from(x, (b, j) => (j === 10 ? b ^ 1 : b)) : x)), undefined],
    ['two chunks swapped', (c) => [c[0]!, c[2]!, c[1]!, ...c.slice(3)], undefined],
    ['a chunk repeated in place of the next', (c) => [c[0]!, c[1]!, c[1]!, ...c.slice(3)], undefined],
    ['truncation at a chunk boundary (no final chunk), with the size the hub claims', (c) => c.slice(0, -1), -1],
    ['truncation at a chunk boundary, the sealed size kept', (c) => c.slice(0, -1), undefined],
    ['truncation mid-chunk', (c) => [...c.slice(0, -1), c.at(-1)!.subarray(0, 5)], undefined],
    ['data after the final chunk', (c) => [...c, new Uint8Array(CHUNK + CHUNK_OVERHEAD)], 1],
    ['a chunk of another file with the same key length', (c) => [c[0]!, randomBytes(c[1]!.length), ...c.slice(2)], undefined],
  ];
  for (const [what, tamper, sizeChange] of tamperings) {
    it(`${what} is ATTACHMENT_TAMPERED, before the whole file is handed out`, async () => {
      const plain = randomBytes(10 * CHUNK + 100);
      const e = await encrypt(plain);
      const changed = tamper(e.chunks);
      const claimed = sizeChange === undefined ? e.cipherSize : Buffer.concat(changed).length;
      const { plain: back, error } = await decrypt(changed, e, claimed);
      expect(error?.code, what).to.equal('ATTACHMENT_TAMPERED');
      expect(back.length).to.be.lessThan(plain.length);
    });
  }

  it('a ciphertext whose hash differs from the sealed one is refused even when every chunk authenticates', async () => {
    const plain = randomBytes(3 * CHUNK);
    const e = await encrypt(plain);
    const wrongHash = Uint8Array.from(e.hash, (b, i) => (i === 0 ? b ^ 1 : b));
    const { plain: back, error } = await decrypt(e.chunks, { ...e, hash: wrongHash });
    expect(error?.code).to.equal('ATTACHMENT_TAMPERED');
    expect(error?.details?.reason).to.match(/hash/);
    expect(back.length, 'the last chunk is held back').to.be.lessThan(plain.length);
  });
});
