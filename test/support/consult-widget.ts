/**
 * The Consults views in Chromium (issue #23): a widget suite on the real backend (Redis and the
 * Mongo-wire DB, in production mode, the test page's origin allowed as a hospital's would be), and what
 * the consult widget tests look at: a case's card, the identity key a browser published (which the
 * office attests), axe-core's serious findings.
 */
import { expect } from 'chai';
import type { Locator, Page } from 'playwright-core';
import { defaultSecurityConfig } from '@curbside/server';
import { axeViolations, widgetSuite } from './browser.js';
import { HubHarness, sharedBackend } from './hub.js';
import { withAdmin } from './admin-cli.js';
import { withDb } from './db.js';

/** A widget suite signed in as `who` on a real hub with the admin API; `shared` names its database. Call it inside `describe`. */
export function consultWidgetSuite(who: { userId: string; deviceId: string; claims?: Record<string, unknown> }) {
  const harness = new HubHarness();
  const shared = sharedBackend();
  const s = widgetSuite({
    who,
    stop: () => harness.cleanup(),
    start: () =>
      harness.start('real', shared, (c) => {
        withAdmin(c);
        // Production mode (the real backend): the test page's origin is allowed like a hospital's would be.
        c.security = { ...defaultSecurityConfig('production'), corsOrigins: 'dev-localhost' };
      }),
  });
  return { s, shared };
}

/** The identity key a browser's device published (base64url), as the office compares it in person. */
export async function identityKeyOf(dbName: string, deviceId: string): Promise<string> {
  const doc = await withDb(dbName, (db) => db.collection('devices').findOne({ orgId: 'org-a', deviceId }));
  const key = doc?.identityKey as { buffer: Uint8Array } | undefined;
  expect(key, `${deviceId} published an identity key`).to.not.equal(undefined);
  return Buffer.from(key!.buffer).toString('base64url');
}

/** The card of the case whose question starts with `text`, in a widget. */
export function caseCard(widget: Locator, text: string): Locator {
  return widget.locator('li.case-card', { has: widget.page().locator('h3.question', { hasText: text }) });
}

/** axe-core's serious and critical findings on a page, one line each. */
export async function seriousViolations(page: Page): Promise<string[]> {
  return (await axeViolations(page)).filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id}: ${v.targets.join(' | ')}`);
}

/** Reply under a case from its card's reply box. */
export async function replyOnCard(card: Locator, text: string): Promise<void> {
  await card.getByRole('textbox', { name: /^Your reply/ }).fill(text);
  await card.getByRole('button', { name: 'Reply', exact: true }).click();
}

/** The asker closes a case from its card with a summary. */
export async function closeOnCard(card: Locator, summary: string): Promise<void> {
  await card.getByRole('button', { name: 'Close with summary' }).click();
  await card.getByRole('textbox', { name: /^Summary/ }).fill(summary);
  await card.getByRole('button', { name: 'Close case' }).click();
}
