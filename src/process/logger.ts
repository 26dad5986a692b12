import pino, { type Logger } from 'pino';

/** Keys whose values are credentials wherever they sit in a logged object. */
const sensitiveKeys = [
  'secretAccessKey',
  'secret_access_key',
  'sessionToken',
  'credentials',
  'apiKey',
  'secret',
  'password',
  'authorization',
  // A task's request (its encryption keys) is never logged; this keeps it so if one ever is.
  'encryption',
];

/**
 * Paths redacted from every log line, whatever object is logged. Pino's wildcards match one level each, so
 * keys are listed down to the deepest credential (`config.input.credentials.secretAccessKey`).
 */
export const redactPaths = [
  'req.headers["x-api-key"]',
  'headers["x-api-key"]',
  '*.headers["x-api-key"]',
  '*.headers.cookie',
  ...sensitiveKeys.flatMap((key) => [0, 1, 2, 3].map((depth) => `${'*.'.repeat(depth)}${key}`)),
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      redact: { paths: redactPaths, censor: '[redacted]' },
      base: { service: 'dash-video-converter' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
