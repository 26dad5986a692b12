import { TaskFailure } from '../domain/failures.js';

/** What was being done when an S3 call failed, to word the failure for a person. */
export interface S3ErrorContext {
  bucket: string;
  /** Set when the call was about one object: a 404 then means that object is missing. */
  key?: string;
  /** Attempts the SDK made (S3_MAX_ATTEMPTS), for the message of transient failures. */
  maxAttempts?: number;
}

/** The parts of an SDK or network error this module looks at; everything else (and any credential) is dropped. */
export interface S3ErrorSummary {
  name: string;
  status?: number;
  requestId?: string;
  attempts?: number;
}

const missingObject = new Set(['NoSuchKey', 'NotFound']);
const missingBucket = new Set(['NoSuchBucket']);
const badCredentials = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'InvalidToken',
  'TokenRefreshRequired',
  'InvalidClientTokenId',
]);
const denied = new Set(['AccessDenied', 'Forbidden', 'AllAccessDisabled', 'AccountProblem']);
const wrongRegion = new Set([
  'PermanentRedirect',
  'AuthorizationHeaderMalformed',
  'IllegalLocationConstraintException',
]);
const networkCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNABORTED',
  'TimeoutError',
  'RequestTimeout',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

/**
 * Reduces an SDK error to its name, HTTP status and request id. Names come from the server, so only plain
 * identifiers are kept; the SDK's own message (which may quote request details) is never used.
 */
export function summarizeS3Error(err: unknown): S3ErrorSummary {
  const e = (err ?? {}) as {
    name?: unknown;
    code?: unknown;
    Code?: unknown;
    $metadata?: { httpStatusCode?: number; requestId?: string; attempts?: number };
  };
  const candidates = [e.code, e.Code, e.name];
  const identifier = (v: unknown) => typeof v === 'string' && /^[A-Za-z][A-Za-z0-9_]{0,63}$/.test(v);
  // Node's network errors carry the useful part in `code` (ECONNREFUSED) and a generic `name` (Error).
  const status = e.$metadata?.httpStatusCode;
  // Answers without a body (HEAD) get a placeholder name from the SDK; the status says more.
  const found = candidates.find((v) => identifier(v) && v !== 'Error' && v !== 'Unknown') as
    string | undefined;
  const name = found ?? (status ? `HTTP ${status}` : 'UnknownError');
  const requestId = e.$metadata?.requestId;
  return {
    name,
    ...(typeof status === 'number' ? { status } : {}),
    ...(typeof requestId === 'string' && /^[\w-]{1,128}$/.test(requestId) ? { requestId } : {}),
    ...(typeof e.$metadata?.attempts === 'number' ? { attempts: e.$metadata.attempts } : {}),
  };
}

export function isAbortError(err: unknown): boolean {
  const name = (err as { name?: unknown } | undefined)?.name;
  return name === 'AbortError';
}

/** True for errors worth another try at the stream level (the connection dropped mid-body). */
export function isTransientNetworkError(err: unknown): boolean {
  const { name, status } = summarizeS3Error(err);
  if (networkCodes.has(name)) return true;
  return status !== undefined && status >= 500;
}

/**
 * An S3 error as a TaskFailure naming the bucket and what went wrong; messages are built from names, never
 * copied from the error, so no secret can appear. Aborts pass through, so cancellation keeps its meaning.
 */
export function toS3Failure(err: unknown, context: S3ErrorContext): Error {
  if (err instanceof TaskFailure || isAbortError(err)) return err as Error;
  const summary = summarizeS3Error(err);
  const { name, status } = summary;
  const bucket = `bucket "${context.bucket}"`;
  const cause = { cause: summary };

  if (missingBucket.has(name)) {
    return new TaskFailure('storage_denied', `${bucket} does not exist`, cause);
  }
  if (context.key !== undefined && (missingObject.has(name) || status === 404)) {
    return new TaskFailure('input_not_found', 'input not found', cause);
  }
  if (name === 'CredentialsProviderError') {
    return new TaskFailure(
      'storage_denied',
      `no S3 credentials found for ${bucket}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or give the machine a role`,
      cause,
    );
  }
  if (badCredentials.has(name)) {
    return new TaskFailure(
      'storage_denied',
      `the S3 credentials were rejected for ${bucket} (${name}): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`,
      cause,
    );
  }
  if (denied.has(name) || status === 403) {
    return new TaskFailure(
      'storage_denied',
      `access denied to ${bucket} (${name}): check the credentials and the bucket policy`,
      cause,
    );
  }
  if (wrongRegion.has(name) || status === 301) {
    return new TaskFailure(
      'storage_denied',
      `${bucket} is in another region or behind another endpoint (${name}): check AWS_REGION and S3_ENDPOINT`,
      cause,
    );
  }
  const tries = context.maxAttempts ? ` after ${context.maxAttempts} attempts` : '';
  if (networkCodes.has(name)) {
    return new TaskFailure(
      'storage_error',
      `the S3 endpoint for ${bucket} could not be reached (${name})${tries}`,
      cause,
    );
  }
  if (status !== undefined && (status >= 500 || status === 429)) {
    return new TaskFailure(
      'storage_error',
      `the S3 service for ${bucket} is unavailable (${status} ${name})${tries}`,
      cause,
    );
  }
  return new TaskFailure(
    'storage_error',
    `S3 request for ${bucket} failed (${status ? `${status} ` : ''}${name})`,
    cause,
  );
}
