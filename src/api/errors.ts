import { apiErrors, type ApiErrorCode } from '../domain/schemas/error-body.js';

export type { ApiErrorCode };

export class ApiError extends Error {
  override name = 'ApiError';
  readonly statusCode: number;
  constructor(
    readonly code: ApiErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.statusCode = apiErrors[code];
  }
}

/** Error codes of a connection that failed (Node's, SQLite's when the database is locked or its disk full). */
const unreachableCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'SQLITE_BUSY',
  'SQLITE_FULL',
]);

/**
 * Whether a dependency (Redis behind the queue, the database) cannot be reached now: answered 503, which
 * may be retried, where a 500 says the request or the service is broken.
 */
export function isDependencyUnavailable(err: Error & { code?: string }): boolean {
  return (
    // ioredis, once its reconnection attempts for a command are spent, or after the connection was closed.
    err.name === 'MaxRetriesPerRequestError' ||
    /^Connection is closed/.test(err.message) ||
    (err.code !== undefined && unreachableCodes.has(err.code))
  );
}

/** The answer while a dependency is away: 503, come back in a few seconds (`/readyz` says which). */
export function dependencyUnavailable(): ApiError {
  return new ApiError(
    'not_ready',
    'the service cannot reach its queue or database now (see /readyz); try again shortly',
    { 'retry-after': '5' },
  );
}

/** The answer while MAX_QUEUED_TASKS tasks are waiting: 503, come back in half a minute. */
export function queueFull(message = 'too many tasks are waiting; try again later'): ApiError {
  return new ApiError('queue_full', message, { 'retry-after': '30' });
}
