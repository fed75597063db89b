/**
 * Issue #20 in the widget, headless Chromium against a real hub with shortened alert intervals: the
 * urgent toggle on compose, the urgent panel (unmistakable, announced, re-announced on repeats) with
 * Acknowledge, the sender's timeline per message ("sent → repeated → acknowledged by …"), and an
 * escalation reaching the browser clinician. Dr Lee is in the browser; the others are SDK clients.
 * The tests run in order and build on each other.
 */
import { expect } from 'chai';
import type { AlertUpdate, ChatMessage, CurbsideClient } from '@curbside/client-sdk';
import { axeViolations, widgetSuite } from '../support/browser.js';
import { HubHarness, eventually } from '../support/hub.js';

const WAIT = 20_000;
const REPEAT_MS = 1_200;
const LEE = { userId: 'dr-lee', deviceId: 'lee-laptop', claims: { name: 'Daniel Lee', profile_role: 'Emergency physician', department: 'Emergency' } };

describe('<curbside-chat> urgent messages: toggle, panel, Acknowledge, timeline, escalation (Chromium)', function () {
  this.timeout(120_000);
  const harness = new HubHarness();
  let patel: CurbsideClient;
  let ortiz: CurbsideClient;
  let directId: string;
  const patelMessages: ChatMessage[] = [];
  const patelAlerts: AlertUpdate[] = [];
  const s = widgetSuite({
    who: LEE,
    host: { script: "window.urgentEvents = []; document.querySelector('curbside-chat').addEventListener('curbside-urgent', (e) => window.urgentEvents.push(e.detail));\n" },
    stop: () => harness.cleanup(),
    start: async () => {
      const t = await harness.start('memory', undefined, (c) => (c.alerts = { repeatMs: { urgent: REPEAT_MS, emergent: REPEAT_MS / 2 }, maxRepeats: 50, sweepMs: 50 }));
      patel = t.client({ userId: 'dr-patel', deviceId: 'patel-desk', claims: { name: 'Anita Patel', profile_role: 'Cardiology registrar' } });
      ortiz = t.client({ userId: 'rn-ortiz', deviceId: 'ortiz-tablet', claims: { name: 'Rosa Ortiz', profile_role: 'Charge nurse' } });
      patel.on('message', (m) => patelMessages.push(m));
      patel.on('alert', (u) => patelAlerts.push(u));
      await Promise.all([patel.connect(), ortiz.connect()]);
      directId = (await patel.createConversation({ kind: 'direct', peerUserId: 'dr-lee' })).id;
      await patel.sendText(directId, 'Morning');
      return t;
    },
  });

  it('the urgent toggle sends an urgent message; the sender sees "sent → repeated → acknowledged by Anita Patel"', async () => {
    await s.widget.locator('button.conv', { hasText: 'Anita Patel' }).first().waitFor({ timeout: WAIT });
    await s.widget.locator('button.conv', { hasText: 'Anita Patel' }).first().click();
    const toggle = s.widget.getByRole('button', { name: 'Urgent' });
    await toggle.click();
    expect(await toggle.getAttribute('aria-pressed')).to.equal('true');
    await s.widget.getByRole('textbox', { name: 'Message' }).fill('Bed 12 K+ 6.8, can you come now?');
    await s.widget.getByRole('button', { name: 'Send' }).click();
    expect(await toggle.getAttribute('aria-pressed'), 'the toggle resets after a send').to.equal('false');
    await eventually(() => patelMessages.some((m) => m.priority === 'urgent' && m.text === 'Bed 12 K+ 6.8, can you come now?'), 'Patel got it as urgent', WAIT);
    const sent = s.widget.locator('.msg.out.urgent', { hasText: 'Bed 12 K+ 6.8' });
    await sent.locator('.urgent-badge', { hasText: 'Urgent' }).waitFor({ timeout: WAIT });
    await sent.locator('.timeline', { hasText: /^sent \S.* → repeated \S/ }).waitFor({ timeout: WAIT });
    const msg = patelMessages.find((m) => m.priority === 'urgent')!;
    await patel.alerts.acknowledge(directId, msg.seq);
    await sent.locator('.timeline', { hasText: /→ acknowledged by Anita Patel ✓ \d/ }).waitFor({ timeout: WAIT });
  });

  it('an urgent message to the user shows at the top, is announced, re-alerts until acknowledged, and Acknowledge stops it', async () => {
    const ack = await patel.sendText(directId, 'STEMI in resus 2, need you', { priority: 'urgent' });
    const panel = s.widget.getByRole('region', { name: 'Urgent messages waiting for you' });
    await panel.waitFor({ timeout: WAIT });
    await panel.getByText('STEMI in resus 2, need you').waitFor({ timeout: WAIT });
    expect(await panel.textContent()).to.match(/URGENT from Anita Patel/);
    expect(await s.widget.getByRole('alert').textContent()).to.match(/Urgent message from Anita Patel: STEMI in resus 2, need you/);
    await panel.getByText(/repeated [12]×/).waitFor({ timeout: WAIT });
    const events = (await s.page.evaluate('window.urgentEvents')) as Array<{ reason: string; seq: number }>;
    expect(events.filter((e) => e.seq === ack.seq).map((e) => e.reason)).to.include.members(['raised', 'repeated']);

    const violations = (await axeViolations(s.page)).filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id);
    expect(violations, 'axe-core with the urgent panel and urgent messages shown').to.deep.equal([]);

    await panel.getByRole('button', { name: 'Acknowledge' }).click();
    await panel.waitFor({ state: 'hidden', timeout: WAIT });
    await eventually(() => patelAlerts.some((u) => u.seq === ack.seq && u.reason === 'acknowledged' && u.acks.some((a) => a.userId === 'dr-lee')), 'Patel hears Lee acknowledged', WAIT);
    const repeats = ((await s.page.evaluate('window.urgentEvents')) as Array<{ seq: number }>).filter((e) => e.seq === ack.seq).length;
    await new Promise((r) => setTimeout(r, REPEAT_MS * 2));
    expect(((await s.page.evaluate('window.urgentEvents')) as Array<{ seq: number }>).filter((e) => e.seq === ack.seq).length, 'no re-alert after the acknowledgement').to.equal(repeats);
  });

  it('an escalation reaches the user from a conversation they are not in: the panel shows the decrypted text, and Acknowledge settles it for everyone', async () => {
    const ward = await ortiz.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });
    const ack = await ortiz.sendText(ward.id, 'Patient in bed 7 deteriorating, NEWS 9', { priority: 'emergent', escalate: [{ afterMs: 1_500, userIds: ['dr-lee'] }] });
    const panel = s.widget.getByRole('region', { name: 'Urgent messages waiting for you' });
    await panel.getByText('Patient in bed 7 deteriorating, NEWS 9').waitFor({ timeout: WAIT });
    expect(await panel.textContent()).to.match(/EMERGENT escalated to you, from Rosa Ortiz/);
    expect(await panel.getByRole('button', { name: 'Open' }).count(), 'not a conversation of the user').to.equal(0);
    await panel.getByRole('button', { name: 'Acknowledge' }).click();
    await panel.waitFor({ state: 'hidden', timeout: WAIT });
    const alert = await ortiz.alerts.open();
    expect(alert.find((a) => a.seq === ack.seq), 'no longer open').to.equal(undefined);
    expect(s.pageErrors).to.deep.equal([]);
  });
});
