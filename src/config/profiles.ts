import { readFileSync } from 'node:fs';
import { PROFILE_NAME_PATTERN } from '../domain/schemas/names.js';
import type { EncodeProfile, EncodeSettings, OutputFormat, RungSpec } from '../pipeline/plan.js';
import { isVideoCodec, videoCodecs, type VideoCodec } from '../pipeline/video-codecs.js';

export const x264Presets = [
  'ultrafast',
  'superfast',
  'veryfast',
  'faster',
  'fast',
  'medium',
  'slow',
  'slower',
  'veryslow',
] as const;

/**
 * The profiles every service has: `default` (the configured ladder), `seed` (the settings of the project
 * this service replaces, for comparisons) and `high` (the configured ladder plus 1080p).
 */
export function builtInProfiles(base: EncodeSettings): Record<string, EncodeProfile> {
  const hasFullHd = base.ladder.some((r) => r.height >= 1080);
  return {
    default: { description: 'The configured ladder (LADDER) and settings.', ladder: base.ladder },
    seed: {
      description:
        "The seed project's settings: 360p at 600 kbit/s and 720p at 3000 kbit/s, near-constant bitrate, " +
        'x264 ultrafast, 3 s segments (keyframe every 3 s).',
      ladder: [
        { height: 360, bitrate: 600_000 },
        { height: 720, bitrate: 3_000_000 },
      ],
      segmentDuration: 3,
      preset: 'ultrafast',
      maxrateFactor: 1,
      bufsizeFactor: 1,
    },
    high: {
      description: 'The configured ladder with a 1080p rung at 5000 kbit/s added.',
      ladder: hasFullHd ? base.ladder : [...base.ladder, { height: 1080, bitrate: 5_000_000 }],
    },
  };
}

/**
 * Reads PROFILES_FILE, profiles by name (README, its config table), `ladder` as a string or a list of
 * `{height, bitrate}`. Problems go to `problems`.
 */
export function readProfilesFile(
  file: string,
  parseLadder: (raw: string, problems: string[]) => RungSpec[],
  problems: string[],
): Record<string, EncodeProfile> {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    problems.push(`PROFILES_FILE=${file} cannot be read as JSON (${(err as Error).message})`);
    return {};
  }
  if (!isObject(data)) {
    problems.push(`PROFILES_FILE=${file} must hold a JSON object of profiles by name`);
    return {};
  }
  const profiles: Record<string, EncodeProfile> = {};
  for (const [name, raw] of Object.entries(data)) {
    const where = `PROFILES_FILE profile "${name}"`;
    if (!new RegExp(PROFILE_NAME_PATTERN).test(name)) {
      problems.push(`${where}: names are lower-case letters, digits, _ and -, at most 40`);
      continue;
    }
    if (!isObject(raw)) {
      problems.push(`${where} must be an object`);
      continue;
    }
    const known = ['description', 'ladder', 'segment_duration', 'preset', 'formats', 'video_codecs', 'cbr'];
    const unknown = Object.keys(raw).filter((k) => !known.includes(k));
    if (unknown.length) problems.push(`${where}: unknown field(s) ${unknown.join(', ')}`);
    const local: string[] = [];
    let ladder: RungSpec[] = [];
    if (typeof raw.ladder === 'string') ladder = parseLadder(raw.ladder, local);
    else if (Array.isArray(raw.ladder)) ladder = parseLadder(raw.ladder.map(rungText).join(','), local);
    else local.push('ladder must be a string like "360:800k,720:2800k" or a list of {height, bitrate}');
    const profile: EncodeProfile = {
      description: typeof raw.description === 'string' ? raw.description : `Profile "${name}".`,
      ladder,
    };
    if (raw.segment_duration !== undefined) {
      const d = raw.segment_duration;
      if (typeof d !== 'number' || !(d >= 1 && d <= 30)) local.push('segment_duration must be 1 to 30');
      else profile.segmentDuration = d;
    }
    if (raw.preset !== undefined) {
      if (!(x264Presets as readonly unknown[]).includes(raw.preset))
        local.push(`preset must be one of ${x264Presets.join(', ')}`);
      else profile.preset = raw.preset as string;
    }
    if (raw.formats !== undefined) {
      const f = raw.formats;
      if (!Array.isArray(f) || f.length === 0 || f.some((x) => x !== 'dash' && x !== 'hls'))
        local.push('formats must be a non-empty list of "dash" and/or "hls"');
      else profile.formats = [...new Set(f as OutputFormat[])];
    }
    if (raw.video_codecs !== undefined) {
      const c = raw.video_codecs;
      if (!Array.isArray(c) || c.length === 0 || c.some((x) => typeof x !== 'string' || !isVideoCodec(x)))
        local.push(`video_codecs must be a non-empty list of ${videoCodecs.join(', ')}`);
      else profile.codecs = [...new Set(c as VideoCodec[])];
    }
    if (raw.cbr !== undefined) {
      if (typeof raw.cbr !== 'boolean') local.push('cbr must be true or false');
      else if (raw.cbr) Object.assign(profile, { maxrateFactor: 1, bufsizeFactor: 1 });
    }
    if (local.length) problems.push(...local.map((p) => `${where}: ${p}`));
    else profiles[name] = profile;
  }
  return profiles;
}

function rungText(rung: unknown): string {
  if (isObject(rung) && Number.isInteger(rung.height) && Number.isInteger(rung.bitrate)) {
    return `${String(rung.height)}:${String(rung.bitrate)}`;
  }
  return JSON.stringify(rung);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export type { EncodeProfile };
