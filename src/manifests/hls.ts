import path from 'node:path';
import type { MediaSegment } from './mpd.js';

export interface MasterPlaylist {
  /** Media playlists of the variants (EXT-X-STREAM-INF), relative to the package. */
  variants: { uri: string; resolution?: { width: number; height: number }; codecs?: string }[];
  /** Renditions (EXT-X-MEDIA with a URI, e.g. the audio), I-frame and image playlists, relative to the package. */
  media: { uri: string; type: string }[];
}

export interface MediaPlaylist {
  /** Relative to the package. */
  map?: string;
  segments: MediaSegment[];
  targetDuration?: number;
  ended: boolean;
}

/** An attribute of a playlist tag (`NAME=value` or `NAME="value"`); `BANDWIDTH` is not `AVERAGE-BANDWIDTH`. */
export const attribute = (line: string, name: string) =>
  new RegExp(`(?:^|[:,])${name}=(?:"([^"]*)"|([^,]*))`)
    .exec(line)
    ?.slice(1)
    .find((v) => v !== undefined);

/** `playlist` is the playlist's own key in the package; URIs in it are resolved against its directory. */
export function parseMasterPlaylist(text: string, playlist: string): MasterPlaylist {
  const lines = playlistLines(text);
  const out: MasterPlaylist = { variants: [], media: [] };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith('#EXT-X-STREAM-INF:')) {
      const uri = lines.slice(i + 1).find((l) => !l.startsWith('#'));
      if (!uri) throw new Error('an EXT-X-STREAM-INF is not followed by a URI');
      const res = /^(\d+)x(\d+)$/.exec(attribute(line, 'RESOLUTION') ?? '');
      out.variants.push({
        uri: resolveUri(playlist, uri),
        resolution: res ? { width: Number(res[1]), height: Number(res[2]) } : undefined,
      });
      const codecs = attribute(line, 'CODECS');
      if (codecs) out.variants.at(-1)!.codecs = codecs;
    } else if (/^#EXT-X-(MEDIA|I-FRAME-STREAM-INF|IMAGE-STREAM-INF):/.test(line)) {
      const uri = attribute(line, 'URI');
      const type = line.startsWith('#EXT-X-MEDIA:')
        ? (attribute(line, 'TYPE') ?? 'MEDIA')
        : line.startsWith('#EXT-X-IMAGE')
          ? 'IMAGE'
          : 'I-FRAME';
      if (uri) out.media.push({ uri: resolveUri(playlist, uri), type });
    }
  }
  return out;
}

export function parseMediaPlaylist(text: string, playlist: string): MediaPlaylist {
  const lines = playlistLines(text);
  const out: MediaPlaylist = { segments: [], ended: false };
  let pending: number | undefined;
  let time = 0;
  for (const line of lines) {
    if (line.startsWith('#EXT-X-MAP:')) {
      const uri = attribute(line, 'URI');
      if (uri) out.map = resolveUri(playlist, uri);
    } else if (line.startsWith('#EXT-X-TARGETDURATION:')) {
      out.targetDuration = Number(line.slice('#EXT-X-TARGETDURATION:'.length));
    } else if (line.startsWith('#EXTINF:')) {
      pending = Number.parseFloat(line.slice('#EXTINF:'.length));
      if (!(pending >= 0)) throw new Error(`bad EXTINF line "${line.slice(0, 40)}"`);
    } else if (line === '#EXT-X-ENDLIST') {
      out.ended = true;
    } else if (!line.startsWith('#')) {
      if (pending === undefined) throw new Error(`segment "${line.slice(0, 60)}" has no EXTINF`);
      out.segments.push({ url: resolveUri(playlist, line), start: time, duration: pending });
      time += pending;
      pending = undefined;
    }
  }
  return out;
}

function playlistLines(text: string): string[] {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean);
  if (lines[0] !== '#EXTM3U') throw new Error('a playlist does not start with #EXTM3U');
  return lines;
}

/**
 * Resolves a URI of a playlist to a key of the package. Absolute URLs and paths that leave the package stay
 * as they are (prefixed with `!`) so the existence check reports them.
 */
export function resolveUri(playlist: string, uri: string): string {
  if (/^[a-z][a-z0-9+.-]*:/i.test(uri) || uri.startsWith('/')) return `!${uri}`;
  const joined = path.posix.normalize(path.posix.join(path.posix.dirname(playlist), uri.split('?')[0]!));
  return joined.startsWith('../') || joined === '..' ? `!${uri}` : joined;
}
