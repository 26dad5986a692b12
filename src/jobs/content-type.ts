import { AUDIO_DIR } from '../pipeline/package.js';

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
 * Segments and init segments: never replaced once published (a new package gets a media directory of its
 * own), so they may be cached as immutable. Manifests, playlists and the poster are replaced in place.
 */
export function isImmutableMedia(key: string): boolean {
  return /\.(m4s|mp4|m4a|vtt)$/i.test(key);
}

/** Manifests and playlists: published last. */
export function isManifest(key: string): boolean {
  return key.endsWith('.mpd') || key.endsWith('.m3u8');
}
