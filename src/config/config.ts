import { assertCallbackUrl } from '../callbacks/address-guard.js';
import path from 'node:path';
import { assertSafeKey } from '../storage/keys.js';
import { defaultLadder, type OutputFormat, type RungSpec } from '../pipeline/plan.js';
import type { MediaTools } from '../pipeline/tools.js';
import { isVideoCodec, videoCodecs, type VideoCodec } from '../pipeline/video-codecs.js';
import type { JobSettings } from '../jobs/job-settings.js';
import type { QueueSettings } from '../queue/queue-settings.js';
import type { S3Settings, StorageSettings } from '../storage/storage-settings.js';
import { readEncryptionKeysFile } from './encryption-keys.js';
import { builtInProfiles, readProfilesFile, x264Presets } from './profiles.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

export interface Config extends JobSettings {
  host: string;
  port: number;
  apiKey?: string;
  logLevel: string;
  stateDir: string;
  input: StorageSettings;
  publicBaseUrl?: string;
  queue: QueueSettings;
  workerConcurrency: number;
  /** Seconds a stopping worker lets its running tasks finish before handing them back. */
  shutdownGraceMs: number;
  /** /readyz answers 503 when the work directory's disk has less free space than this. */
  minFreeDiskBytes: number;
  /** A process without the API (`worker`) serves /healthz, /readyz and /metrics on this port when set. */
  metricsPort?: number;
  callback: {
    url?: string;
    secret?: string;
    maxAttempts: number;
    backoffMs: number;
    timeoutMs: number;
    allowPrivate: boolean;
  };
  tools: Partial<MediaTools>;
}

type Env = Record<string, string | undefined>;

/** Every setting, its default and what it does: the README's table is written from this list. */
export const settingNames = [
  'HOST',
  'PORT',
  'API_KEY',
  'LOG_LEVEL',
  'STATE_DIR',
  'WORK_DIR',
  'STORAGE',
  'INPUT_DIR',
  'OUTPUT_DIR',
  'INPUT_S3_BUCKET',
  'OUTPUT_S3_BUCKET',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_REGION',
  'S3_ENDPOINT',
  'S3_PUBLIC_ENDPOINT',
  'S3_FORCE_PATH_STYLE',
  'S3_MAX_ATTEMPTS',
  'OUTPUT_PREFIX',
  'PUBLIC_BASE_URL',
  'SEGMENT_CACHE_CONTROL',
  'MANIFEST_CACHE_CONTROL',
  'UPLOAD_CONCURRENCY',
  'QUEUE',
  'REDIS_URL',
  'QUEUE_PREFIX',
  'TASK_RETENTION_SECONDS',
  'TASK_MAX_ATTEMPTS',
  'LEASE_SECONDS',
  'WORKER_CONCURRENCY',
  'SHUTDOWN_GRACE_SECONDS',
  'LADDER',
  'SEGMENT_DURATION',
  'X264_PRESET',
  'VIDEO_CODECS',
  'SCALER',
  'AUDIO_BITRATE',
  'AUDIO_COPY',
  'MAX_FRAME_RATE',
  'OUTPUT_FORMATS',
  'THUMBNAILS',
  'PROFILES_FILE',
  'ENCRYPTION_KEYS_FILE',
  'ENCRYPTION_REQUIRED',
  'EARLY_MANIFEST',
  'CHUNK_SECONDS',
  'CHUNK_MIN_INPUT_SECONDS',
  'QC_MODE',
  'QC_QUALITY',
  'MIN_FREE_DISK_MB',
  'METRICS_PORT',
  'MAX_INPUT_BYTES',
  'MAX_DURATION_SECONDS',
  'MAX_PIXELS',
  'MAX_INPUT_FRAME_RATE',
  'MAX_QUEUED_TASKS',
  'BODY_LIMIT_BYTES',
  'PROCESS_IDLE_TIMEOUT_SECONDS',
  'PROCESS_MAX_RUNTIME_SECONDS',
  'CALLBACK_URL',
  'CALLBACK_SECRET',
  'CALLBACK_MAX_ATTEMPTS',
  'CALLBACK_BACKOFF_MS',
  'CALLBACK_TIMEOUT_MS',
  'CALLBACK_ALLOW_PRIVATE',
  'FFMPEG_PATH',
  'FFPROBE_PATH',
  'PACKAGER_PATH',
  'XMLLINT_PATH',
] as const;

/** Reads and checks the whole configuration; every problem is reported at once, with the setting named. */
export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = [];
  const str = (name: string, fallback?: string) => {
    const v = env[name]?.trim();
    return v === undefined || v === '' ? fallback : v;
  };
  const int = (name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER) => {
    const raw = str(name);
    if (raw === undefined) return fallback;
    // Digits only: Number() also reads 0x50 (80) and 1e3, which nobody means in a port or a count.
    const n = /^-?\d+$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${name}=${raw} must be a whole number from ${min} to ${max}`);
      return fallback;
    }
    return n;
  };
  const num = (name: string, fallback: number, min: number, max: number) => {
    const raw = str(name);
    if (raw === undefined) return fallback;
    const n = /^-?(\d+\.?\d*|\.\d+)$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isFinite(n) || n < min || n > max) {
      problems.push(`${name}=${raw} must be a number from ${min} to ${max}`);
      return fallback;
    }
    return n;
  };
  // A prefix of keys: relative, `/`-separated, no `.` or `..` segment (slashes at its ends are dropped).
  const keyPrefix = (name: string) => {
    const raw = str(name, '')!.replace(/^\/+|\/+$/g, '');
    if (!raw) return '';
    try {
      assertSafeKey(raw, name);
    } catch (err) {
      problems.push(`${name}=${raw}: ${(err as Error).message.replace(`${name} `, '')}`);
      return '';
    }
    return raw;
  };
  const bool = (name: string, fallback: boolean) => {
    const raw = str(name)?.toLowerCase();
    if (raw === undefined) return fallback;
    if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
    if (['0', 'false', 'no', 'off'].includes(raw)) return false;
    problems.push(`${name}=${raw} must be true or false`);
    return fallback;
  };
  const oneOf = <T extends string>(name: string, allowed: readonly T[], fallback: T): T => {
    const raw = str(name);
    if (raw === undefined) return fallback;
    if ((allowed as readonly string[]).includes(raw)) return raw as T;
    problems.push(`${name}=${raw} must be one of: ${allowed.join(', ')}`);
    return fallback;
  };
  const url = (name: string, protocols: string[]) => {
    const raw = str(name);
    if (raw === undefined) return undefined;
    try {
      const u = new URL(raw);
      if (!protocols.includes(u.protocol)) throw new Error();
      return raw;
    } catch {
      problems.push(`${name} must be a ${protocols.map((p) => p.replace(':', '')).join(' or ')} URL`);
      return undefined;
    }
  };

  const stateDir = path.resolve(str('STATE_DIR', './data/state')!);
  const inputBucket = str('INPUT_S3_BUCKET');
  const outputBucket = str('OUTPUT_S3_BUCKET');
  const storageMode = oneOf(
    'STORAGE',
    ['local', 's3'] as const,
    inputBucket || outputBucket ? 's3' : 'local',
  );

  const accessKeyId = str('AWS_ACCESS_KEY_ID');
  const secretAccessKey = str('AWS_SECRET_ACCESS_KEY');
  if (!!accessKeyId !== !!secretAccessKey) {
    problems.push(
      'AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together (or neither, for the default chain)',
    );
  }
  const s3Base = {
    region: str('AWS_REGION', str('AWS_DEFAULT_REGION', 'us-east-1'))!,
    endpoint: url('S3_ENDPOINT', ['http:', 'https:']),
    publicEndpoint: url('S3_PUBLIC_ENDPOINT', ['http:', 'https:']),
    forcePathStyle: bool('S3_FORCE_PATH_STYLE', !!str('S3_ENDPOINT')),
    credentials:
      accessKeyId && secretAccessKey
        ? { accessKeyId, secretAccessKey, sessionToken: str('AWS_SESSION_TOKEN') }
        : undefined,
    maxAttempts: int('S3_MAX_ATTEMPTS', 5, 1, 20),
  };
  // With STORAGE=s3, a side without a bucket stays on local disk: input and output may differ in kind.
  const side = (bucket: string | undefined, dirName: string, dirDefault: string): StorageSettings =>
    storageMode === 's3' && bucket
      ? { kind: 's3', bucket, ...s3Base }
      : { kind: 'local', root: path.resolve(str(dirName, dirDefault)!) };
  const input = side(inputBucket, 'INPUT_DIR', './data/input');
  const output = side(outputBucket, 'OUTPUT_DIR', './data/output');
  if (storageMode === 's3' && !inputBucket && !outputBucket) {
    problems.push('STORAGE=s3 needs INPUT_S3_BUCKET and/or OUTPUT_S3_BUCKET');
  }

  const queueKind = oneOf('QUEUE', ['sqlite', 'redis'] as const, 'sqlite');
  const maxAttempts = int('TASK_MAX_ATTEMPTS', 3, 1, 20);
  let queue: QueueSettings;
  if (queueKind === 'redis') {
    const redisUrl = url('REDIS_URL', ['redis:', 'rediss:']);
    if (!redisUrl && !str('REDIS_URL'))
      problems.push('QUEUE=redis needs REDIS_URL (e.g. redis://localhost:6379)');
    queue = {
      kind: 'redis',
      url: redisUrl ?? 'redis://localhost:6379',
      prefix: str('QUEUE_PREFIX', 'dvc')!,
      maxAttempts,
      retentionSeconds: int('TASK_RETENTION_SECONDS', 7 * 24 * 3600, 60),
      leaseMs: int('LEASE_SECONDS', 30, 2, 3600) * 1000,
    };
  } else {
    queue = {
      kind: 'sqlite',
      path: path.join(stateDir, 'tasks.db'),
      leaseMs: int('LEASE_SECONDS', 30, 2, 3600) * 1000,
      maxAttempts,
    };
  }

  const formats = parseFormats(str('OUTPUT_FORMATS', 'dash,hls')!, problems);
  const codecs = parseVideoCodecs(str('VIDEO_CODECS', 'h264')!, 'VIDEO_CODECS', problems);
  const ladder = parseLadder(str('LADDER'), problems);

  const config: Config = {
    host: str('HOST', '0.0.0.0')!,
    port: int('PORT', 8080, 0, 65535),
    apiKey: str('API_KEY'),
    logLevel: oneOf(
      'LOG_LEVEL',
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const,
      'info',
    ),
    stateDir,
    workDir: path.resolve(str('WORK_DIR', path.join(stateDir, 'work'))!),
    input,
    output,
    outputPrefix: keyPrefix('OUTPUT_PREFIX'),
    publicBaseUrl: url('PUBLIC_BASE_URL', ['http:', 'https:']),
    cacheControl: {
      segments: str('SEGMENT_CACHE_CONTROL', 'public, max-age=31536000, immutable')!,
      manifests: str('MANIFEST_CACHE_CONTROL', 'public, max-age=60')!,
    },
    uploadConcurrency: int('UPLOAD_CONCURRENCY', 8, 1, 64),
    queue,
    workerConcurrency: int('WORKER_CONCURRENCY', 1, 1, 64),
    shutdownGraceMs: int('SHUTDOWN_GRACE_SECONDS', 30, 0, 3600) * 1000,
    encode: {
      ladder,
      segmentDuration: num('SEGMENT_DURATION', 4, 1, 30),
      preset: oneOf('X264_PRESET', x264Presets, 'superfast'),
      maxrateFactor: 1,
      bufsizeFactor: 2,
      audioBitrate: int('AUDIO_BITRATE', 128_000, 32_000, 512_000),
      audioCopy: bool('AUDIO_COPY', true),
      maxFrameRate: num('MAX_FRAME_RATE', 60, 1, 240),
      formats,
      scaler: oneOf('SCALER', ['zscale', 'swscale'] as const, 'zscale'),
      thumbnails: bool('THUMBNAILS', true),
      codecs,
    },
    profiles: {},
    encryption: { required: bool('ENCRYPTION_REQUIRED', false) },
    earlyManifest: bool('EARLY_MANIFEST', false),
    chunks: {
      seconds: int('CHUNK_SECONDS', 60, 1, 3600),
      minInputSeconds: int('CHUNK_MIN_INPUT_SECONDS', 300, 0, 1e7),
    },
    qc: {
      mode: oneOf('QC_MODE', ['enforce', 'warn', 'off'] as const, 'enforce'),
      quality: bool('QC_QUALITY', false),
    },
    minFreeDiskBytes: int('MIN_FREE_DISK_MB', 1024, 0) * 1024 * 1024,
    metricsPort: str('METRICS_PORT') === undefined ? undefined : int('METRICS_PORT', 0, 0, 65535),
    limits: {
      maxInputBytes: int('MAX_INPUT_BYTES', 10 * 1024 ** 3, 1),
      maxDurationSeconds: num('MAX_DURATION_SECONDS', 4 * 3600, 1, 1e7),
      maxPixels: int('MAX_PIXELS', 4096 * 2304, 1),
      maxFrameRate: num('MAX_INPUT_FRAME_RATE', 240, 1, 10_000),
      maxQueuedTasks: int('MAX_QUEUED_TASKS', 10_000, 1),
      bodyLimitBytes: int('BODY_LIMIT_BYTES', 64 * 1024, 1024, 100 * 1024 * 1024),
    },
    watchdog: {
      idleTimeoutMs: int('PROCESS_IDLE_TIMEOUT_SECONDS', 120, 1) * 1000,
      maxRuntimeMs: int('PROCESS_MAX_RUNTIME_SECONDS', 6 * 3600, 1) * 1000,
    },
    callback: {
      url: url('CALLBACK_URL', ['http:', 'https:']),
      secret: str('CALLBACK_SECRET'),
      maxAttempts: int('CALLBACK_MAX_ATTEMPTS', 5, 1, 50),
      backoffMs: int('CALLBACK_BACKOFF_MS', 1000, 1, 3_600_000),
      timeoutMs: int('CALLBACK_TIMEOUT_MS', 10_000, 100, 600_000),
      allowPrivate: bool('CALLBACK_ALLOW_PRIVATE', false),
    },
    tools: {
      ffmpeg: str('FFMPEG_PATH'),
      ffprobe: str('FFPROBE_PATH'),
      packager: str('PACKAGER_PATH'),
      xmllint: str('XMLLINT_PATH'),
    },
  };
  const profilesFile = str('PROFILES_FILE');
  config.profiles = {
    ...builtInProfiles(config.encode),
    ...(profilesFile ? readProfilesFile(path.resolve(profilesFile), parseLadderText, problems) : {}),
  };
  const keysFile = str('ENCRYPTION_KEYS_FILE');
  if (keysFile) config.encryption.serverKeys = readEncryptionKeysFile(path.resolve(keysFile), problems);
  // The default callback is checked as a per-task one is at submit: one that can never be used would fail
  // every task's delivery instead of the start-up.
  if (config.callback.url) {
    try {
      assertCallbackUrl(config.callback.url, { allowPrivate: config.callback.allowPrivate });
    } catch (err) {
      problems.push(`CALLBACK_URL: ${(err as Error).message.replace(/^callback_url /, '')}`);
    }
  }
  if (problems.length) throw new ConfigError(problems);
  return config;
}

function parseFormats(raw: string, problems: string[]): OutputFormat[] {
  const items = raw
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  const bad = items.filter((f) => f !== 'dash' && f !== 'hls');
  if (bad.length || items.length === 0) {
    problems.push(`OUTPUT_FORMATS=${raw} must list dash and/or hls, comma-separated`);
    return ['dash', 'hls'];
  }
  return [...new Set(items)] as OutputFormat[];
}

/** `VIDEO_CODECS=h264,av1`: the codecs every rung is encoded in (also the CLI's `--codecs`). */
export function parseVideoCodecs(raw: string, name: string, problems: string[]): VideoCodec[] {
  const items = raw
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  const bad = items.filter((c) => !isVideoCodec(c));
  if (bad.length || items.length === 0) {
    problems.push(`${name}=${raw} must list codecs among ${videoCodecs.join(', ')}, comma-separated`);
    return ['h264'];
  }
  return [...new Set(items)] as VideoCodec[];
}

/** `LADDER=360:800k,720:2800k,1080:5000k`: short side in pixels, bitrate in bit/s (k and M suffixes). */
export function parseLadder(raw: string | undefined, problems: string[]): RungSpec[] {
  if (!raw) return defaultLadder;
  return parseLadderText(raw, problems, 'LADDER');
}

function parseLadderText(raw: string, problems: string[], what = 'ladder'): RungSpec[] {
  const rungs: RungSpec[] = [];
  for (const part of raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^(\d{2,4})p?:(\d+(?:\.\d+)?)([kKmM]?)$/.exec(part);
    if (!m) {
      problems.push(`${what} entry "${part}" must look like 720:2800k (height:bitrate)`);
      continue;
    }
    const factor = { '': 1, k: 1e3, K: 1e3, m: 1e6, M: 1e6 }[m[3] ?? ''] ?? 1;
    const height = Number(m[1]);
    const bitrate = Math.round(Number(m[2]) * factor);
    if (height < 16 || height > 4320 || bitrate < 50_000 || bitrate > 100_000_000) {
      problems.push(`${what} entry "${part}" is out of range (height 16–4320, bitrate 50k–100M)`);
      continue;
    }
    rungs.push({ height, bitrate });
  }
  if (rungs.length === 0) {
    problems.push(`${what} has no valid rung`);
    return defaultLadder;
  }
  return rungs;
}

export type { QueueSettings, S3Settings, StorageSettings };
