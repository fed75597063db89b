// Loaded into every server the bench starts (`node --import <this> …`): measures event-loop delay
// with perf_hooks.monitorEventLoopDelay and answers the runner over the IPC channel.
//   { type: 'eld', reset } → { type: 'eld', p50, p99, max, mean } (ms)
//   { type: 'gc' }         → runs a full GC when node has --expose-gc, then { type: 'gc', done }
import { monitorEventLoopDelay } from 'node:perf_hooks';

if (process.send) {
  // Each sample is the time between two ticks of a `resolution` ms timer: the delay is what exceeds it.
  const resolution = 5;
  const h = monitorEventLoopDelay({ resolution });
  h.enable();
  const ms = (ns) => Math.max(0, Math.round(ns / 1e4 - resolution * 100) / 100);
  process.on('message', (m) => {
    if (m?.type === 'eld') {
      process.send({ type: 'eld', p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max), mean: ms(h.mean) });
      if (m.reset) h.reset();
    } else if (m?.type === 'gc') {
      const gc = globalThis.gc;
      if (typeof gc === 'function') gc();
      process.send({ type: 'gc', done: typeof gc === 'function' });
    }
  });
  process.channel?.unref();
}
