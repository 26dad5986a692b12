import { AUDIO_DIR } from '../pipeline/package.js';
import { THUMBNAIL_DIR } from '../pipeline/thumbnails.js';

const THUMBNAIL_SHEET = new RegExp(`(^|/)${THUMBNAIL_DIR}/[^/]+\\.jpe?g$`, 'i');
// HLS WebVTT segments of a text track (`text_1/…`).
const TEXT_SEGMENT = /(^|\/)text_\d+\/[^/]+\.vtt$/i;

const types: Record<string, string> = {
  '.mpd': 'application/dash+xml',
  '.m3u8': 'application/vnd.apple.mpegurl',
  '.m4s': 'video/mp4',
  '.mp4': 'video/mp4',
  '.m4a': 'audio/mp4',
  '.vtt': 'text/vtt',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.json': 'application/json',
};

export function contentTypeFor(key: string): string {
  const dot = key.lastIndexOf('.');
  const ext = dot >= 0 ? key.slice(dot).toLowerCase() : '';
  // Audio-only fragments are audio/mp4 (RFC 4337), whatever their extension.
  const dir = key.split('/').at(-2) ?? '';
  if ((ext === '.m4s' || ext === '.mp4') && (dir === AUDIO_DIR || dir.startsWith(`${AUDIO_DIR}_`)))
    return 'audio/mp4';
  // WebVTT in fMP4 (DASH's text tracks).
  if ((ext === '.m4s' || ext === '.mp4') && dir.startsWith('text_')) return 'application/mp4';
  return types[ext] ?? 'application/octet-stream';
}

/**
 * Segments, init segments and thumbnail sheets, cacheable as immutable: a new package gets a media directory
 * of its own, and only top-level files (manifests, playlists, thumbnail track, poster) are replaced in place.
 */
export function isImmutableMedia(key: string): boolean {
  // Keys may carry the output prefix: a sheet or a WebVTT segment is known by its directory, not by a slash
  // in the key (thumbnails.vtt, at the top, is replaced in place).
  return /\.(m4s|mp4|m4a)$/i.test(key) || THUMBNAIL_SHEET.test(key) || TEXT_SEGMENT.test(key);
}

/** Manifests and playlists: published last. */
export function isManifest(key: string): boolean {
  return key.endsWith('.mpd') || key.endsWith('.m3u8');
}
