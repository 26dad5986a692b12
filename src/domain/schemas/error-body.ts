import { Type, type Static } from '@sinclair/typebox';
import { StringEnum } from './shared.js';

/** Every error the API answers with: code → HTTP status. Messages of 5xx errors are never shown to clients. */
export const apiErrors = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  too_many_requests: 429,
  headers_too_large: 431,
  internal: 500,
  queue_full: 503,
  not_ready: 503,
} as const;

export type ApiErrorCode = keyof typeof apiErrors;

/** The body of every error answer. */
export const ErrorBodySchema = Type.Object({
  error: StringEnum(Object.keys(apiErrors) as ApiErrorCode[]),
  message: Type.String(),
});
export type ErrorBody = Static<typeof ErrorBodySchema>;
