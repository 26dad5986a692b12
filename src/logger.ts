import pino, { type Logger } from 'pino';

/** Paths redacted from every log line: credentials never reach the logs, whatever object is logged. */
export const redactPaths = [
  'req.headers["x-api-key"]',
  'req.headers.authorization',
  'headers["x-api-key"]',
  'headers.authorization',
  '*.secretAccessKey',
  '*.secret_access_key',
  '*.sessionToken',
  '*.apiKey',
  '*.secret',
  '*.password',
  'config.callback.secret',
  'config.apiKey',
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
