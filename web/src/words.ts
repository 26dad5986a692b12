import type { StatusDocument } from './types.js';

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

export function formatBitrate(bps: number): string {
  return bps >= 1_000_000 ? `${(bps / 1_000_000).toFixed(1)} Mbit/s` : `${Math.round(bps / 1000)} kbit/s`;
}

export function formatSeconds(total: number): string {
  const s = Math.max(1, Math.round(total));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** `uploads/<uuid>/clip.mp4` → `clip.mp4`: what a person recognises. */
export function displayName(key: string): string {
  return key.slice(key.lastIndexOf('/') + 1) || key;
}

const stages: Record<string, string> = {
  starting: 'starting',
  fetch: 'fetching the input',
  probe: 'reading the file',
  encode: 'encoding',
  package: 'packaging',
  poster: 'making the poster',
  qc: 'checking the package',
  publish: 'publishing',
  requeued: 'waiting to be retried',
  retrying: 'waiting to be retried',
  cancelled: 'cancelled',
  done: 'done',
};

export function stageWords(stage: string | null): string {
  return stage ? (stages[stage] ?? stage) : '';
}

export function statusWords(doc: StatusDocument): { key: string; label: string } {
  if (doc.status === 'failed' && doc.cancelled) return { key: 'cancelled', label: 'Cancelled' };
  const label = { queued: 'Queued', processing: 'Processing', completed: 'Ready', failed: 'Failed' }[
    doc.status
  ];
  return { key: doc.status, label };
}

const failures: Record<string, string> = {
  input_not_found: 'The file to convert could not be found.',
  invalid_input: 'The request named a file that cannot be used.',
  not_a_video: 'This file is not a video that can be read.',
  limit_exceeded: 'The video is beyond what this service accepts.',
  encode_failed: 'Encoding the video failed.',
  package_failed: 'Packaging the stream failed.',
  qc_failed: 'The result did not pass the final check.',
  cancelled: 'The conversion was cancelled.',
  timeout: 'The conversion took too long and was stopped.',
  storage_error: 'The storage could not be reached.',
  storage_denied: 'The storage refused access.',
  disk_full: 'The server ran out of disk space.',
  worker_lost: 'The worker converting it stopped.',
  internal: 'Something went wrong on the server.',
};

/** Why a task failed in plain words: a sentence for the kind of failure, then the service's detail. */
export function failureWords(doc: StatusDocument): string {
  const headline = (doc.error_code && failures[doc.error_code]) || 'The conversion failed.';
  const detail = doc.error?.trim();
  if (!detail || doc.error_code === 'cancelled') return headline;
  return `${headline} ${detail.charAt(0).toUpperCase()}${detail.slice(1)}${/[.!?]$/.test(detail) ? '' : '.'}`;
}

const shakaCategories: Record<number, string> = {
  1: 'the stream could not be downloaded',
  2: 'the subtitles could not be read',
  3: 'the browser could not play the media',
  4: 'the manifest could not be read',
  5: 'the stream could not be set up',
  6: 'the content is protected and cannot be played',
  7: 'the player stopped',
  8: 'casting failed',
  9: 'the stream could not be stored',
  10: 'an ad failed',
};

/** A Shaka Player error (category and numeric code) as a sentence with the code kept for reference. */
export function playerErrorWords(err: unknown): string {
  const e = err as { category?: number; code?: number; message?: string } | undefined;
  if (e && typeof e.code === 'number') {
    const what = (e.category && shakaCategories[e.category]) || 'the player failed';
    return `Playback failed: ${what} (Shaka Player error ${e.code}).`;
  }
  return `Playback failed: ${e?.message ?? String(err)}.`;
}
