/**
 * A case with one image posted to a group of credentialed clinicians, every member checked to decrypt
 * it and its image: a consult pool that everyone but its owner joined themselves, or a care team its
 * owner made (the comparison). Used by the 300-member pool test and by `npm run bench:consults`.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChatMessage, CurbsideClient } from '@curbside/client-sdk';
import type { Office } from './office.js';

/** A real phone photo with GPS (test/fixtures/images): de-identified on the poster's device. */
export const CASE_IMAGE: Uint8Array = new Uint8Array(readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'images', 'phone-gps-scaled.jpg')));

export interface ConsultScenario {
  kind: 'pool' | 'team';
  members: number;
  /** Connecting every client and attesting its device. */
  setupMs: number;
  /** Every member in: the moderator's enrolment and joins one after the other (pool), or the owner's team. */
  membershipMs: number;
  /** From the post call until its ack. */
  postAckMs: number;
  /** From the post call until each other member's client emitted the case (decrypted): p50 and the last. */
  decryptMs: { p50: number; last: number };
  /** From the post call until each downloading member had downloaded and decrypted the image too: the last. */
  imageMs: number;
  /** Members that got the case and its image whole (the poster aside). */
  decrypted: number;
  imagesWhole: number;
  /** Why downloads failed (typed error codes and messages), so a failing count says what happened. */
  imageErrors: string[];
  /** The hub's CPU time from the post until the last image was downloaded (when `hubCpuMs` was given). */
  hubCpuMs?: number;
}

const at = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

async function inBatches<T>(items: readonly T[], size: number, fn: (item: T, index: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map((x, j) => fn(x, i + j)));
}

/**
 * Run the scenario with `members` clients made by `client` (connected here) and credentialed by
 * `office`; resolves once every member decrypted the case and its image, or `timeoutMs` passed (then
 * the counts say who did not).
 */
export async function consultScenario(o: {
  kind: 'pool' | 'team';
  members: number;
  client: (userId: string, deviceId: string) => CurbsideClient;
  office: Office;
  prefix: string;
  /** How many members (other than the poster) download and decrypt the image. @default all */
  imageDownloads?: number;
  /** Pool: how many join themselves (the rest the moderator enrols when opening it). @default 5 */
  joiners?: number;
  timeoutMs?: number;
  /** Progress, for a long run. */
  log?: (line: string) => void;
  /** The hub's CPU time so far (ms), read before the post and after the last image: its cost of the post. */
  hubCpuMs?: () => number;
}): Promise<ConsultScenario> {
  const t0 = performance.now();
  const ids = Array.from({ length: o.members }, (_, i) => ({ userId: `${o.prefix}-u${i}`, deviceId: `${o.prefix}-d${i}` }));
  const clients = ids.map((id) => o.client(id.userId, id.deviceId));
  await inBatches(clients, 20, (c) => c.connect());
  await inBatches(clients, 25, (c, i) => o.office.attest(c, ids[i]!.userId, ids[i]!.deviceId, 'Dermatology'));
  const setupMs = performance.now() - t0;
  o.log?.(`${o.members} connected and attested, ${Math.round(setupMs)} ms`);

  const [owner, poster] = [clients[0]!, clients[1]!];
  const t1 = performance.now();
  let conversationId: string;
  if (o.kind === 'pool') {
    // The moderator enrols most at once; the last `joiners` join themselves, into a pool that large.
    const joiners = Math.min(o.joiners ?? 3, o.members - 2);
    const enrolled = ids.slice(1, o.members - joiners).map((id) => id.userId);
    conversationId = (await owner.consults.create(`${o.prefix} dermatology curbside`, { members: enrolled })).poolId;
    o.log?.(`pool created with ${enrolled.length + 1} members, ${Math.round(performance.now() - t1)} ms`);
    for (const c of clients.slice(o.members - joiners)) {
      await c.consults.join(conversationId);
      o.log?.(`one more joined, ${Math.round(performance.now() - t1)} ms`);
    }
  } else {
    conversationId = (await owner.teams.create(`${o.prefix} ward team`, ids.slice(1).map((id) => ({ userId: id.userId })))).teamId;
  }
  // Every member's device has verified the whole membership before the post (as in steady state).
  await Promise.all(clients.map((c) => waitFor(async () => Object.keys((await c.teams.state(conversationId))?.members ?? {}).length === o.members, o.timeoutMs ?? 120_000)));
  const membershipMs = performance.now() - t1;
  o.log?.(`every device verified the membership, ${Math.round(membershipMs)} ms`);

  const decryptedAt: number[] = [];
  const imageAt: number[] = [];
  let imagesWhole = 0;
  const imageErrors: string[] = [];
  let postedAt = 0;
  let caseId: string | undefined;
  const early: Array<{ client: CurbsideClient; m: ChatMessage }> = [];
  const downloaders = new Set(clients.slice(2).concat(owner).slice(0, o.imageDownloads ?? o.members));
  const onCase = (client: CurbsideClient, m: ChatMessage) => {
    decryptedAt.push(performance.now() - postedAt);
    if (!downloaders.has(client)) return;
    void client.attachments
      .download(m.attachment!)
      .bytes()
      .then((bytes) => {
        imageAt.push(performance.now() - postedAt);
        if (bytes.length === m.attachment!.size && bytes.length > 0) imagesWhole++;
        else imageErrors.push(`${bytes.length} of ${m.attachment!.size} bytes`);
      })
      .catch((err: unknown) => {
        imageAt.push(Number.NaN);
        imageErrors.push(`${(err as { code?: string }).code ?? 'no code'}: ${(err as Error).message}`);
      });
  };
  for (const c of clients.slice(2).concat(owner)) {
    c.on('message', (m) => {
      if (m.conversationId !== conversationId || m.consult?.type !== 'case' || !m.attachment) return;
      if (caseId === undefined) early.push({ client: c, m });
      else if (m.messageId === caseId) onCase(c, m);
    });
  }
  const cpuBefore = o.hubCpuMs?.();
  postedAt = performance.now();
  const question = 'Annular plaque, 3 weeks. Thoughts?';
  // The same sealed message either way (a team has no consults API: the case goes as an attachment with its consult part).
  const ack =
    o.kind === 'pool'
      ? await poster.consults.postCase(conversationId, { question, ageBand: '30-39', sex: 'female', image: { input: CASE_IMAGE, options: { mediaType: 'image/jpeg' } } })
      : (await poster.attachments.send(conversationId, CASE_IMAGE, { caption: question, mediaType: 'image/jpeg', consult: { type: 'case', ageBand: '30-39', sex: 'female' } })).result;
  const postAckMs = performance.now() - postedAt;
  caseId = ack.messageId;
  for (const e of early.splice(0)) if (e.m.messageId === caseId) onCase(e.client, e.m);
  const others = o.members - 1;
  await waitFor(() => decryptedAt.length >= others && imageAt.length >= downloaders.size, o.timeoutMs ?? 120_000).catch(() => {});
  const cpuAfter = o.hubCpuMs?.();
  return {
    ...(cpuBefore !== undefined && cpuAfter !== undefined ? { hubCpuMs: cpuAfter - cpuBefore } : {}),
    kind: o.kind,
    members: o.members,
    setupMs,
    membershipMs,
    postAckMs,
    decryptMs: decryptedAt.length ? { p50: at(decryptedAt, 0.5), last: Math.max(...decryptedAt) } : { p50: Number.NaN, last: Number.NaN },
    imageMs: imageAt.length ? Math.max(...imageAt) : Number.NaN,
    decrypted: decryptedAt.length,
    imagesWhole,
    imageErrors,
  };
}

async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}
