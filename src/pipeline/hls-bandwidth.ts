import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { attribute, parseMediaPlaylist, resolveUri } from '../manifests/hls.js';

/** A media playlist's bit rates, bits per second, as RFC 8216 defines them for EXT-X-STREAM-INF. */
export interface PlaylistBitrates {
  /** The largest rate of any run of consecutive segments lasting 0.5–1.5 × the target duration. */
  peak: number;
  /** All segments' bytes over their duration. */
  average: number;
}

/**
 * A playlist's peak and average segment bit rates (RFC 8216 4.3.4.2); when no run of segments is long enough
 * (a clip shorter than half the target duration), the peak is the whole's.
 */
export function playlistBitrates(
  segments: { bytes: number; duration: number }[],
  targetDuration: number,
): PlaylistBitrates {
  const bits = (from: number, to: number) =>
    segments.slice(from, to).reduce((sum, s) => sum + s.bytes * 8, 0);
  const seconds = (from: number, to: number) =>
    segments.slice(from, to).reduce((sum, s) => sum + s.duration, 0);
  const total = seconds(0, segments.length);
  const average = total > 0 ? bits(0, segments.length) / total : 0;
  let peak = 0;
  for (let from = 0; from < segments.length; from++) {
    for (let to = from + 1; to <= segments.length; to++) {
      const span = seconds(from, to);
      if (span > 1.5 * targetDuration) break;
      if (span >= 0.5 * targetDuration && span > 0) peak = Math.max(peak, bits(from, to) / span);
    }
  }
  return { peak: Math.max(peak, average), average };
}

/**
 * Raises (never lowers) each variant's BANDWIDTH to its playlist's peak plus its audio's: Shaka Packager
 * skips short segments, so on short clips it fell below RFC 8216's peak (up to 9 %) and its own average.
 */
export async function raiseHlsBandwidth(pkgDir: string, masterName: string): Promise<void> {
  const masterFile = path.join(pkgDir, masterName);
  const lines = (await readFile(masterFile, 'utf8')).split('\n');
  const cache = new Map<string, Promise<PlaylistBitrates>>();
  const ratesOf = (uri: string) => {
    const key = resolveUri(masterName, uri);
    let rates = cache.get(key);
    if (!rates) cache.set(key, (rates = readPlaylistBitrates(pkgDir, key)));
    return rates;
  };
  const audioGroups = new Map<string, string[]>();
  for (const line of lines) {
    if (!line.startsWith('#EXT-X-MEDIA:') || attribute(line, 'TYPE') !== 'AUDIO') continue;
    const group = attribute(line, 'GROUP-ID');
    const uri = attribute(line, 'URI');
    if (group && uri) audioGroups.set(group, [...(audioGroups.get(group) ?? []), uri]);
  }
  let changed = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (!line.startsWith('#EXT-X-STREAM-INF:')) continue;
    const uri = lines.slice(i + 1).find((l) => l.trim() && !l.startsWith('#'));
    if (!uri) continue;
    const video = await ratesOf(uri.trim());
    const group = attribute(line, 'AUDIO');
    const audio = await Promise.all((group ? (audioGroups.get(group) ?? []) : []).map(ratesOf));
    const audioPeak = Math.max(0, ...audio.map((a) => a.peak));
    const stated = Number(attribute(line, 'BANDWIDTH'));
    const average = Number(attribute(line, 'AVERAGE-BANDWIDTH') ?? 0);
    const needed = Math.ceil(Math.max(video.peak + audioPeak, average));
    if (Number.isFinite(stated) && stated < needed) {
      lines[i] = line.replace(/([:,])BANDWIDTH=\d+/, `$1BANDWIDTH=${needed}`);
      changed = true;
    }
  }
  if (changed) await writeFile(masterFile, lines.join('\n'));
}

async function readPlaylistBitrates(pkgDir: string, key: string): Promise<PlaylistBitrates> {
  const playlist = parseMediaPlaylist(await readFile(path.join(pkgDir, key), 'utf8'), key);
  const segments = await Promise.all(
    playlist.segments.map(async (s) => ({
      bytes: (await stat(path.join(pkgDir, s.url))).size,
      duration: s.duration,
    })),
  );
  return playlistBitrates(segments, playlist.targetDuration ?? Math.max(...segments.map((s) => s.duration)));
}
