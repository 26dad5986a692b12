import type { TaskRequest } from '../domain/task.js';
import type { MediaInfo } from '../pipeline/media-info.js';
import type { EncodePlan } from '../pipeline/plan.js';
import { canSplit, chunksOf, type ChunkSpan } from '../pipeline/chunks/plan-chunks.js';
import type { JobSettings } from './job-settings.js';

/** Whether and how a task's video is encoded in chunks, each a job any worker takes (split and stitch). */
export interface SplitDecision {
  /** The chunks, in order; [] when the input is encoded in one run. */
  chunks: ChunkSpan[];
  /** Seconds per chunk asked for (CHUNK_SECONDS or `chunk_seconds`); 0 when splitting is off for the task. */
  chunkSeconds: number;
  /** Why the input is, or is not, split: a sentence for the plan and the logs. */
  reason: string;
}

/** A request's `chunk_seconds` overrides both settings for its task (0: never split). */
export function splitSettings(
  config: Pick<JobSettings, 'chunks'>,
  request: Pick<TaskRequest, 'chunkSeconds'>,
): { chunkSeconds: number; minInputSeconds: number } {
  const asked = request.chunkSeconds;
  if (asked !== undefined) return { chunkSeconds: asked, minInputSeconds: asked };
  return { chunkSeconds: config.chunks.seconds, minInputSeconds: config.chunks.minInputSeconds };
}

/** Decides the split of one input, from its probe and its plan. */
export function decideSplit({
  config,
  request,
  media,
  plan,
}: {
  config: Pick<JobSettings, 'chunks'>;
  request: Pick<TaskRequest, 'chunkSeconds'>;
  media: MediaInfo;
  plan: EncodePlan;
}): SplitDecision {
  const { chunkSeconds, minInputSeconds } = splitSettings(config, request);
  if (chunkSeconds === 0) return { chunks: [], chunkSeconds, reason: 'chunk_seconds is 0: never split' };
  if (!(media.duration > minInputSeconds)) {
    return {
      chunks: [],
      chunkSeconds,
      reason: `the input (${round(media.duration)} s) is not longer than ${minInputSeconds} s: encoded in one run`,
    };
  }
  const verdict = canSplit(plan, media);
  if (!verdict.ok) return { chunks: [], chunkSeconds, reason: `not split: ${verdict.reason}` };
  const chunks = chunksOf(media, plan, { chunkSeconds, minInputSeconds });
  if (chunks.length === 0) {
    return { chunks, chunkSeconds, reason: 'the input makes a single chunk: encoded in one run' };
  }
  const each = chunks[0]!.end - chunks[0]!.start;
  return {
    chunks,
    chunkSeconds,
    reason: `split into ${chunks.length} chunks of ${round(each)} s (whole ${plan.segmentDuration} s segments), encoded by any worker, then joined`,
  };
}

function round(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}
