import type { Config } from '../config/config.js';
import { TaskFailure } from '../errors.js';
import type { EncodeSettings } from '../pipeline/plan.js';
import type { TaskRequest } from '../queue/task.js';
import { assertSafeKey, joinKey, outputPrefixFor } from '../storage/keys.js';

/**
 * The encoder settings of one request: the service's settings, then the named profile (when `ladder` names
 * one), then the request's own `ladder`, `segment_duration` and `formats`. An unknown profile is a
 * TaskFailure('invalid_input'), so the API can refuse it before queueing and a worker never guesses.
 */
export function resolveEncodeSettings(config: Config, request: TaskRequest): EncodeSettings {
  const settings: EncodeSettings = { ...config.encode };
  if (typeof request.ladder === 'string') {
    const profile = Object.hasOwn(config.profiles, request.ladder)
      ? config.profiles[request.ladder]
      : undefined;
    if (!profile) {
      throw new TaskFailure(
        'invalid_input',
        `unknown profile "${request.ladder}"; known profiles: ${Object.keys(config.profiles).join(', ')}`,
      );
    }
    settings.ladder = profile.ladder;
    if (profile.segmentDuration !== undefined) settings.segmentDuration = profile.segmentDuration;
    if (profile.preset !== undefined) settings.preset = profile.preset;
    if (profile.maxrateFactor !== undefined) settings.maxrateFactor = profile.maxrateFactor;
    if (profile.bufsizeFactor !== undefined) settings.bufsizeFactor = profile.bufsizeFactor;
    if (profile.formats !== undefined) settings.formats = profile.formats;
  } else if (request.ladder) {
    settings.ladder = request.ladder.map((r) => ({ height: r.height, bitrate: r.bitrate }));
  }
  if (request.segment_duration !== undefined) settings.segmentDuration = request.segment_duration;
  if (request.formats !== undefined) settings.formats = [...new Set(request.formats)];
  return settings;
}

/** Where a request's package is published: OUTPUT_PREFIX, then `output_prefix` or the input's name. */
export function packagePrefixFor(config: Config, request: TaskRequest): string {
  if (request.output_prefix === undefined)
    return outputPrefixFor(request.video_filename, config.outputPrefix);
  try {
    assertSafeKey(request.output_prefix, 'output_prefix');
  } catch (err) {
    throw new TaskFailure('invalid_input', (err as Error).message);
  }
  return joinKey(config.outputPrefix, request.output_prefix);
}
