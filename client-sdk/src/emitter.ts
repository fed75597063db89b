/**
 * A small typed event emitter driven by an event map. The SDK runs in browsers too, so it does
 * not use Node's `events` module.
 */
export type EventMap<T> = { [K in keyof T]: (...args: any[]) => void };

export class TypedEmitter<Events extends EventMap<Events>> {
  private readonly listeners = new Map<keyof Events, Set<Events[keyof Events]>>();

  /** Subscribe; returns a function that unsubscribes. */
  on<E extends keyof Events>(event: E, listener: Events[E]): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => this.off(event, listener);
  }

  once<E extends keyof Events>(event: E, listener: Events[E]): () => void {
    const wrapped = ((...args: Parameters<Events[E]>) => {
      this.off(event, wrapped);
      listener(...args);
    }) as Events[E];
    return this.on(event, wrapped);
  }

  off<E extends keyof Events>(event: E, listener: Events[E]): void {
    this.listeners.get(event)?.delete(listener);
  }

  protected emit<E extends keyof Events>(event: E, ...args: Parameters<Events[E]>): void {
    for (const listener of [...(this.listeners.get(event) ?? [])]) {
      try {
        listener(...args);
      } catch (err) {
        // A throwing app listener must not break the SDK's delivery loop.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}
