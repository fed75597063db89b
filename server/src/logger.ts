import { pino, type Logger } from 'pino';

export type { Logger };

/** Keys pino writes on every line itself: a call's object must not write them again. */
const OWN_KEYS = ['level', 'time', 'msg'];

/**
 * Structured logs. The hub never logs envelope bodies, tokens or keys; the redaction list is a
 * second line of defence for a field that slips into a log call by mistake.
 *
 * Every line is one JSON object with each key once. pino writes its own keys, the base (`node`) and a
 * child's bindings, then the call's object, without checking that they differ; a log pipeline that
 * keeps the first or the last of two equal keys then shows a different value than the other. A call
 * object's key that the line already has is moved under `shadowed` instead.
 */
export function createLogger(options: { level: string; nodeId: string; destination?: pino.DestinationStream }): Logger {
  return pino(
    {
      level: options.level,
      base: { node: options.nodeId },
      redact: {
        paths: ['ciphertext', '*.ciphertext', 'token', '*.token', 'auth', '*.auth', 'headers.authorization', '*.headers.authorization', 'privateKey', '*.privateKey'],
        censor: '[redacted]',
      },
      hooks: {
        logMethod(args, method) {
          const [first, ...rest] = args as unknown[];
          if (first !== null && typeof first === 'object' && !(first instanceof Error) && !Array.isArray(first)) {
            const taken = new Set([...OWN_KEYS, 'node', ...Object.keys(this.bindings())]);
            const clashes = Object.keys(first).filter((k) => taken.has(k));
            if (clashes.length) {
              const own: Record<string, unknown> = {};
              const shadowed: Record<string, unknown> = {};
              for (const [k, v] of Object.entries(first)) (taken.has(k) ? shadowed : own)[k] = v;
              own.shadowed = shadowed;
              return method.apply(this, [own, ...rest] as Parameters<typeof method>);
            }
          }
          return method.apply(this, args);
        },
      },
    },
    options.destination,
  );
}
