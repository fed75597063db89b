#!/usr/bin/env node
/**
 * The container's health check: exits 0 when this node's `GET /healthz` answers `{"status":"ok"}`, 1
 * otherwise. The runtime image has no curl or wget, so Docker's HEALTHCHECK runs this with the hub's own
 * environment (`PORT`, `HOST`). It probes liveness only: a node whose database is down stays "healthy"
 * here (its `/readyz` says 503, and the storage watchdog exits the process if the outage lasts).
 */
import { HealthResponseSchema, RestPath } from '@curbside/shared';

const port = process.env.PORT?.trim() || '3000';
const host = process.env.HOST?.trim();
// A hub listening on every interface is reached on loopback; one bound to an address, on that address.
const target = !host || host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
const url = `http://${target}:${port}${RestPath.HEALTH}`;

try {
  const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
  const body: unknown = await res.json();
  if (res.status !== 200 || !HealthResponseSchema.safeParse(body).success) {
    process.stderr.write(`healthcheck: ${url} answered ${res.status} ${JSON.stringify(body)}\n`);
    process.exit(1);
  }
} catch (e) {
  process.stderr.write(`healthcheck: ${url}: ${(e as Error).message}\n`);
  process.exit(1);
}
