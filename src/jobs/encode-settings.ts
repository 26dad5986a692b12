import type { JobSettings } from './job-settings.js';
import {
  EncryptionInputError,
  formatConflict,
  resolveEncryption,
  type EncryptionSpec,
} from '../domain/encryption.js';
import { TaskFailure } from '../domain/failures.js';
import type { EncodeSettings } from '../pipeline/plan.js';
import { isVideoCodec, videoCodecs, type VideoCodec } from '../pipeline/video-codecs.js';
import type { TaskRequest } from '../domain/task.js';
import {
  assertSafeKey,
  joinKey,
  MAX_KEY_BYTES,
  outputPrefixFor,
  PACKAGE_KEY_RESERVE_BYTES,
} from '../storage/keys.js';

/**
 * One request's encoder settings: the service's, then the named profile, then the request's own fields. An
 * unknown profile or two names is `invalid_input`, so the API refuses it before queueing.
 */
export function resolveEncodeSettings(config: JobSettings, request: TaskRequest): EncodeSettings {
  const settings: EncodeSettings = { ...config.encode };
  const ladderName = typeof request.ladder === 'string' ? request.ladder : undefined;
  if (request.profile !== undefined && ladderName !== undefined) {
    throw new TaskFailure(
      'invalid_input',
      `name the profile once: "profile": "${request.profile}" and "ladder": "${ladderName}" were both given`,
    );
  }
  const profileName = request.profile ?? ladderName;
  if (profileName !== undefined) {
    const profile = Object.hasOwn(config.profiles, profileName) ? config.profiles[profileName] : undefined;
    if (!profile) {
      throw new TaskFailure(
        'invalid_input',
        `unknown profile "${profileName}"; known profiles: ${Object.keys(config.profiles).join(', ')}`,
      );
    }
    settings.ladder = profile.ladder;
    if (profile.segmentDuration !== undefined) settings.segmentDuration = profile.segmentDuration;
    if (profile.preset !== undefined) settings.preset = profile.preset;
    if (profile.maxrateFactor !== undefined) settings.maxrateFactor = profile.maxrateFactor;
    if (profile.bufsizeFactor !== undefined) settings.bufsizeFactor = profile.bufsizeFactor;
    if (profile.formats !== undefined) settings.formats = profile.formats;
    if (profile.codecs !== undefined) settings.codecs = profile.codecs;
  }
  if (Array.isArray(request.ladder)) {
    settings.ladder = request.ladder.map((r) => ({ height: r.height, bitrate: r.bitrate }));
  }
  if (request.segmentDuration !== undefined) settings.segmentDuration = request.segmentDuration;
  if (request.formats !== undefined) settings.formats = [...new Set(request.formats)];
  if (request.thumbnails !== undefined) settings.thumbnails = request.thumbnails;
  if (request.videoCodecs !== undefined) settings.codecs = requestedCodecs(request.videoCodecs);
  if (request.subtitles !== undefined) settings.subtitles = request.subtitles.map((s) => ({ ...s }));
  if (request.audioTracks !== undefined) settings.audioTracks = request.audioTracks;
  if (request.defaultAudioLanguage !== undefined)
    settings.defaultAudioLanguage = request.defaultAudioLanguage;
  return settings;
}

/** A request's `video_codecs`, checked here too: a task queued by another version never reaches FFmpeg unread. */
function requestedCodecs(names: string[]): VideoCodec[] {
  const unknown = names.filter((n) => !isVideoCodec(n));
  if (unknown.length || names.length === 0) {
    throw new TaskFailure(
      'invalid_input',
      `video_codecs must list codecs among ${videoCodecs.join(', ')}${unknown.length ? `; unknown: ${unknown.join(', ')}` : ''}`,
    );
  }
  return [...new Set(names as VideoCodec[])];
}

/** Every codec the configuration may encode: VIDEO_CODECS and the profiles' (what FFmpeg must have). */
export function configuredCodecs(config: Pick<JobSettings, 'encode' | 'profiles'>): VideoCodec[] {
  const profiles = Object.values(config.profiles).flatMap((p) => p.codecs ?? []);
  return [...new Set([...config.encode.codecs, ...profiles])];
}

/** Where a request's package is published: OUTPUT_PREFIX, then `output_prefix` or the input's name. */
export function packagePrefixFor(config: JobSettings, request: TaskRequest): string {
  const derived = request.outputPrefix === undefined;
  const what = derived ? 'the output prefix made from video_filename' : 'output_prefix';
  let prefix: string;
  try {
    if (derived) {
      prefix = outputPrefixFor(request.videoFilename, config.outputPrefix);
    } else {
      assertSafeKey(request.outputPrefix, 'output_prefix');
      prefix = joinKey(config.outputPrefix, request.outputPrefix!);
    }
    // Checked here as every key is at publishing: a name that cannot give a package place fails now, before
    // any encoding, and not once the first segment's key turns out too long.
    assertSafeKey(prefix, what);
  } catch (err) {
    throw new TaskFailure('invalid_input', (err as Error).message);
  }
  const room = MAX_KEY_BYTES - PACKAGE_KEY_RESERVE_BYTES;
  if (Buffer.byteLength(prefix) > room) {
    throw new TaskFailure(
      'invalid_input',
      `${what} is too long to hold a package: at most ${room} bytes with OUTPUT_PREFIX (keys are limited to ${MAX_KEY_BYTES})`,
    );
  }
  return prefix;
}

/**
 * A request's encryption with its keys (its own, else ENCRYPTION_KEYS_FILE's), or undefined; `invalid_input`
 * naming the field, never a value, for no key, `cenc` with HLS, or none with ENCRYPTION_REQUIRED.
 */
export function resolveRequestEncryption(
  config: Pick<JobSettings, 'encryption'>,
  request: TaskRequest,
  settings: Pick<EncodeSettings, 'formats'>,
): EncryptionSpec | undefined {
  if (!request.encryption) {
    if (config.encryption.required) {
      throw new TaskFailure(
        'invalid_input',
        'encryption is required by this service (ENCRYPTION_REQUIRED): give "encryption", e.g. {"scheme": "cbcs"}',
      );
    }
    return undefined;
  }
  let spec: EncryptionSpec | undefined;
  try {
    spec = resolveEncryption(request.encryption, config.encryption.serverKeys);
  } catch (err) {
    if (err instanceof EncryptionInputError) throw new TaskFailure('invalid_input', err.message);
    throw err;
  }
  const conflict = spec && formatConflict(spec, settings.formats);
  if (conflict) throw new TaskFailure('invalid_input', conflict);
  return spec;
}
