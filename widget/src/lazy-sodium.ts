/**
 * libsodium, loaded when the SDK first needs it. The widget's build (scripts/build.mjs) puts this
 * module where the SDK imports `libsodium-wrappers-sumo`, and bundles the real libsodium apart, as an
 * ES module (`curbside-sodium.js`, next to `curbside-chat.js`): the main file stays small and the
 * widget draws itself before the 500 KB of WebAssembly arrive.
 *
 * It stands in for the package's default export: `ready` imports and initialises the real module, then
 * copies its functions and constants onto this object, which is what the SDK calls from then on.
 */
type Sodium = Record<string, unknown> & { ready: Promise<unknown> };

let url: string | undefined;
let loading: Promise<void> | undefined;
const sodium = {} as Sodium;

async function load(): Promise<void> {
  if (!url) throw new Error('libsodium: the widget has not said where to load it from yet');
  const real = ((await import(/* webpackIgnore: true */ url)) as { default: Sodium }).default;
  await real.ready;
  for (const [name, value] of Object.entries(real)) if (name !== 'ready') sodium[name] = value;
}

Object.defineProperty(sodium, 'ready', {
  get: () => {
    loading ??= load().catch((e: unknown) => {
      loading = undefined; // a later attempt (after a reconnect) may load it
      throw e;
    });
    return loading;
  },
});

/**
 * Where `curbside-sodium.js` is, and start loading it. Next to the widget's own script when that is
 * `curbside-chat.js`; otherwise (the widget bundled into the host page's code) from the hub.
 */
export function loadSodiumFrom(scriptSrc: string, hub: string): void {
  if (!url) {
    const script = scriptSrc ? new URL(scriptSrc) : undefined;
    url = script?.pathname.endsWith('/curbside-chat.js') ? new URL('curbside-sodium.js', script).href : new URL('widget/curbside-sodium.js', hub.endsWith('/') ? hub : `${hub}/`).href;
  }
  void sodium.ready.catch(() => {}); // the SDK awaits it and reports a failure
}

export default sodium;
