import { compositeKey } from '@curbside/shared';
import type { AuditEvent } from '../audit/port.js';

/**
 * Refused events are audited once per window and kind, with a count: the first refusal of a kind
 * (same device, action and outcome) is recorded at once, and the ones after it in the same window as
 * one entry carrying `count` when the window closes. 5,000 refused events used to write 5,001 audit
 * entries that are never deleted; a flood now writes two per kind and minute.
 */
export class RefusalAudit {
  private readonly windows = new Map<string, { event: AuditEvent; startedAt: number; repeats: number }>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly write: (event: AuditEvent) => void,
    private readonly now: () => number,
    private readonly windowMs = 60_000,
  ) {
    this.timer = setInterval(() => this.flush(false), Math.max(1000, Math.floor(windowMs / 4)));
    this.timer.unref();
  }

  record(event: AuditEvent): void {
    const key = compositeKey(event.orgId ?? '', event.userId ?? '', event.deviceId ?? '', event.ip ?? '', event.action, event.outcome);
    const open = this.windows.get(key);
    if (open && event.at - open.startedAt < this.windowMs) {
      open.repeats += 1;
      return;
    }
    if (open) this.close(key, open);
    this.windows.set(key, { event, startedAt: event.at, repeats: 0 });
    this.write(event);
  }

  /** Write the counts of windows that ended (all of them with `everything`, e.g. at shutdown). */
  flush(everything = true): void {
    const now = this.now();
    for (const [key, open] of this.windows) if (everything || now - open.startedAt >= this.windowMs) this.close(key, open);
  }

  stop(): void {
    clearInterval(this.timer);
    this.flush(true);
  }

  private close(key: string, open: { event: AuditEvent; startedAt: number; repeats: number }): void {
    this.windows.delete(key);
    if (open.repeats === 0) return;
    const { event } = open;
    this.write({
      at: this.now(),
      action: event.action,
      outcome: event.outcome,
      orgId: event.orgId,
      userId: event.userId,
      deviceId: event.deviceId,
      ip: event.ip,
      count: open.repeats,
      note: 'repeated',
    });
  }
}
