import type { Services } from '../app/services.js';
import { assertCallbackUrl, CallbackTargetError } from '../callbacks/address-guard.js';
import { EncryptionInputError, parseEncryption } from '../domain/encryption.js';
import { TaskFailure } from '../domain/failures.js';
import {
  METADATA_MAX_BYTES,
  taskRequestFields,
  type TaskRequest as WireTaskRequest,
} from '../domain/schemas/encode-request.js';
import { fromWire } from '../domain/schemas/wire.js';
import type { TaskRequest } from '../domain/task.js';
import { assertSafeKey, UnsafeKeyError } from '../storage/keys.js';
import {
  packagePrefixFor,
  resolveEncodeSettings,
  resolveRequestEncryption,
} from '../jobs/encode-settings.js';
import { ApiError } from './errors.js';
import { isLanguageTag } from '../pipeline/languages.js';
import { videoCodecSpecs } from '../pipeline/video-codecs.js';

/**
 * Checks what the schema cannot (safe keys, callback target, known profile, metadata size) and returns the
 * request to queue (camelCase), with its fields in a fixed order (the Idempotency-Key comparison hashes it).
 */
export function toTaskRequest(body: WireTaskRequest, services: Services): TaskRequest {
  const badRequest = (err: unknown): never => {
    if (
      err instanceof UnsafeKeyError ||
      err instanceof CallbackTargetError ||
      err instanceof TaskFailure ||
      err instanceof EncryptionInputError
    ) {
      throw new ApiError('bad_request', err.message);
    }
    throw err;
  };
  try {
    assertSafeKey(body.video_filename);
  } catch (err) {
    badRequest(err);
  }
  if (body.callback_url !== undefined) {
    try {
      assertCallbackUrl(body.callback_url, { allowPrivate: services.config.callback.allowPrivate });
    } catch (err) {
      badRequest(err);
    }
  }
  if (body.metadata !== undefined && Buffer.byteLength(JSON.stringify(body.metadata)) > METADATA_MAX_BYTES) {
    throw new ApiError('bad_request', `metadata must be at most ${METADATA_MAX_BYTES} bytes as JSON`);
  }
  // In the schema's field order, whatever the body's: the Idempotency-Key comparison hashes it.
  const wire = Object.fromEntries(
    taskRequestFields.filter((field) => body[field] !== undefined).map((field) => [field, body[field]]),
  ) as WireTaskRequest;
  if (wire.default_audio_language !== undefined && !isLanguageTag(wire.default_audio_language)) {
    throw new ApiError(
      'bad_request',
      `default_audio_language "${wire.default_audio_language}" is not a language tag`,
    );
  }
  const request = fromWire(wire);
  if (request.subtitles !== undefined) {
    // Each in one field order, whatever the body's (the Idempotency-Key comparison hashes it).
    request.subtitles = request.subtitles.map((s) => {
      try {
        assertSafeKey(s.filename, 'a subtitles filename');
      } catch (err) {
        badRequest(err);
      }
      if (!isLanguageTag(s.language)) {
        throw new ApiError('bad_request', `subtitles language "${s.language}" is not a language tag`);
      }
      return {
        filename: s.filename,
        language: s.language,
        ...(s.label !== undefined ? { label: s.label } : {}),
        ...(s.forced !== undefined ? { forced: s.forced } : {}),
      };
    });
  }
  try {
    // Checked, and its hex in lower case: the hash of an Idempotency-Key compares it.
    if (wire.encryption !== undefined) request.encryption = parseEncryption(wire.encryption);
    const settings = resolveEncodeSettings(services.config, request);
    packagePrefixFor(services.config, request);
    resolveRequestEncryption(services.config, request, settings);
  } catch (err) {
    badRequest(err);
  }
  return request;
}

/** Refuses (400) a request whose codecs this service's FFmpeg cannot encode, before anything is queued. */
export async function assertCodecsAvailable(request: TaskRequest, services: Services): Promise<void> {
  const { codecs } = resolveEncodeSettings(services.config, request);
  const have = await services.videoEncoders();
  const missing = codecs.filter((c) => !have.has(videoCodecSpecs[c].encoder));
  if (missing.length) {
    const encoders = missing.map((c) => `${c} (${videoCodecSpecs[c].encoder})`).join(', ');
    throw new ApiError('bad_request', `this service's FFmpeg cannot encode ${encoders}`);
  }
}
