import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Structured logs. The hub never logs envelope bodies, tokens or keys; the redaction list is a
 * second line of defence for a field that slips into a log call by mistake.
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
    },
    options.destination,
  );
}
