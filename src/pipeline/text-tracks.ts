import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { TaskFailure } from '../domain/failures.js';
import { runProcess } from '../process/run-process.js';
import type { StageContext } from './context.js';
import { inputGuardArgs } from './input-formats.js';
import type { MediaInfo } from './media-info.js';
import type { EncodePlan, TextTrackPlan } from './plan.js';
import { normaliseSubtitles } from './subtitles.js';

export interface PreparedText {
  /**
   * The plan with the text tracks that go into the package (an embedded stream without cues is left out, and
   * added to its skipped subtitles).
   */
  plan: EncodePlan;
  /** WebVTT file per track name, clipped to the video, for the packager. */
  files: Record<string, string>;
}

/** What the status document and the plan say of a subtitle stream left out. */
export function skippedSubtitleMessage(s: EncodePlan['skippedSubtitles'][number]): string {
  return `subtitle stream ${s.index} (${s.codec}) is not packaged: ${s.reason}`;
}

/**
 * Where the package's video ends, seconds from the input's start: the video stream's end when the input says
 * (a Matroska file's duration runs to its last subtitle), held to the audio's end when planned so.
 */
export function presentationEnd(media: MediaInfo, plan: Pick<EncodePlan, 'holdLastFrame'>): number {
  const { video } = media;
  if (video.duration === undefined) return media.duration;
  const start = (video.startTime ?? media.startTime) - media.startTime;
  return Math.min(media.duration, start + video.duration + (plan.holdLastFrame ?? 0));
}

/**
 * Every planned text track as WebVTT in `dir`, clipped to `duration`: a bad request file fails the task
 * (`invalid_subtitles`), an unconvertible or empty embedded stream is left out with a reason.
 */
export async function prepareTextTracks({
  inputPath,
  media,
  plan,
  sidecars,
  dir,
  ctx,
}: {
  inputPath: string;
  media: MediaInfo;
  plan: EncodePlan;
  /** Local file of each request's subtitle file, by its filename. */
  sidecars: Record<string, string>;
  dir: string;
  ctx: StageContext;
}): Promise<PreparedText> {
  if (!plan.textTracks.length) return { plan, files: {} };
  const duration = presentationEnd(media, plan);
  const tracks: TextTrackPlan[] = [];
  const files: Record<string, string> = {};
  const skipped: EncodePlan['skippedSubtitles'] = [];
  await mkdir(dir, { recursive: true });
  const raw = (t: TextTrackPlan) => path.join(dir, `${t.name}.source.vtt`);
  const embedded = plan.textTracks.filter((t) => 'embedded' in t.source);
  let extracted = embedded.length > 0;
  if (extracted) {
    try {
      await runProcess(
        ctx.tools.ffmpeg,
        [
          ...['-hide_banner', '-nostdin', '-y', '-v', 'error'],
          ...inputGuardArgs(),
          ...['-i', `file:${inputPath}`],
          ...embedded.flatMap((t) => [
            ...['-map', `0:${(t.source as { embedded: number }).embedded}`, '-map_metadata', '-1'],
            ...['-c:s', 'webvtt', '-f', 'webvtt', `file:${raw(t)}`],
          ]),
        ],
        {
          logger: ctx.logger,
          signal: ctx.signal,
          idleTimeoutMs: ctx.idleTimeoutMs,
          timeoutMs: ctx.maxRuntimeMs,
        },
      );
    } catch (err) {
      ctx.signal?.throwIfAborted();
      ctx.logger.warn({ err }, "could not convert the input's subtitles to WebVTT");
      extracted = false;
    }
  }
  for (const track of plan.textTracks) {
    const out = path.join(dir, `${track.name}.vtt`);
    if ('sidecar' in track.source) {
      const file = sidecars[track.source.sidecar];
      if (!file) throw new Error(`no local file for the subtitle file ${track.source.sidecar}`);
      await normaliseSubtitles(file, out, { name: track.source.sidecar, duration });
    } else {
      const { embedded: index, codec } = track.source;
      const reason = !extracted
        ? 'FFmpeg could not convert it to WebVTT'
        : await normaliseSubtitles(raw(track), out, { name: `stream ${index}`, duration }).then(
            () => undefined,
            (err: unknown) => {
              if (err instanceof TaskFailure) return err.message.replace(/^.*cannot be used: /, '');
              throw err;
            },
          );
      if (reason) {
        skipped.push({ index, codec, reason });
        continue;
      }
    }
    tracks.push(track);
    files[track.name] = out;
  }
  return {
    plan: { ...plan, textTracks: tracks, skippedSubtitles: [...plan.skippedSubtitles, ...skipped] },
    files,
  };
}
