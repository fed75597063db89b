/** Keep the event loop busy for `ms`, as a loaded hub's is: replies land in the socket meanwhile, timers fall due. */
export function blockEventLoop(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy
  }
}
