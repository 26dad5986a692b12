import type { Logger } from 'pino';
import { runProcess } from '../process/run-process.js';

interface ProbeStreams {
  streams?: {
    index: number;
    duration?: string;
    start_time?: string;
    tags?: Record<string, string>;
  }[];
  format?: { duration?: string; start_time?: string };
}

/**
 * How long the given streams of a source last, in seconds: the stream's own duration, its DURATION tag
 * (Matroska, WebM), or the container's duration less the stream's start.
 */
export async function sourceDurations(
  ffprobe: string,
  inputPath: string,
  indexes: { video: number; audio?: number },
  options: { logger?: Logger; signal?: AbortSignal } = {},
): Promise<{ video: number; audio?: number }> {
  const { stdout } = await runProcess(
    ffprobe,
    [
      '-v',
      'error',
      // A local file already probed by the pipeline: still, no other protocol may be opened.
      '-protocol_whitelist',
      'file',
      '-print_format',
      'json',
      '-show_entries',
      'stream=index,duration,start_time:stream_tags=DURATION:format=duration,start_time',
      `file:${inputPath}`,
    ],
    { logger: options.logger, signal: options.signal, timeoutMs: 60_000 },
  );
  return durationsFrom(JSON.parse(stdout) as ProbeStreams, indexes);
}

export function durationsFrom(
  data: ProbeStreams,
  indexes: { video: number; audio?: number },
): { video: number; audio?: number } {
  const container = Number(data.format?.duration);
  const containerStart = Number(data.format?.start_time) || 0;
  const of = (index: number): number => {
    const s = data.streams?.find((x) => x.index === index);
    const own = Number(s?.duration);
    if (own > 0) return own;
    const tagged = clock(s?.tags?.DURATION ?? s?.tags?.duration);
    if (tagged > 0) return tagged;
    return Math.max(0, container - ((Number(s?.start_time) || 0) - containerStart));
  };
  return {
    video: of(indexes.video),
    ...(indexes.audio !== undefined ? { audio: of(indexes.audio) } : {}),
  };
}

/** `00:00:30.003000000` → 30.003 */
function clock(value: string | undefined): number {
  const m = /^(\d+):(\d{2}):(\d{2}(?:\.\d+)?)$/.exec(value ?? '');
  return m ? Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]) : 0;
}
