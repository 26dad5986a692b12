/** One cue of a thumbnail track: a span of the video and the rectangle of a sheet that pictures it. */
export interface ThumbnailCue {
  start: number;
  end: number;
  /** The image's URL as written (relative to the track), without the fragment. */
  url: string;
  /** `#xywh=x,y,w,h`, when the cue has one (a whole image otherwise). */
  rect?: { x: number; y: number; w: number; h: number };
}

/**
 * Reads a WebVTT thumbnail track (`00:00:02.000 --> 00:00:04.000` then `sheet.jpg#xywh=0,0,240,135`), as
 * video.js, Plyr, JW Player and Shaka Player's `addThumbnailsTrack` do. Throws on a cue it cannot read.
 */
export function parseThumbnailVtt(text: string): ThumbnailCue[] {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  if (!/^WEBVTT(?:[ \t].*)?$/.test(lines[0] ?? '')) throw new Error('the track does not start with WEBVTT');
  const cues: ThumbnailCue[] = [];
  for (let i = 1; i < lines.length; i++) {
    const timing = /^(\S+)\s+-->\s+(\S+)/.exec(lines[i]!);
    if (!timing) continue;
    const start = vttSeconds(timing[1]!);
    const end = vttSeconds(timing[2]!);
    const payload = lines[i + 1]?.trim();
    if (start === undefined || end === undefined || !payload) {
      throw new Error(`cue ${cues.length + 1} ("${lines[i]!.slice(0, 40)}") cannot be read`);
    }
    const [url, fragment] = payload.split('#', 2) as [string, string | undefined];
    const xywh = /^xywh=(?:pixel:)?(\d+),(\d+),(\d+),(\d+)$/.exec(fragment ?? '');
    cues.push({
      start,
      end,
      url,
      ...(xywh
        ? { rect: { x: Number(xywh[1]), y: Number(xywh[2]), w: Number(xywh[3]), h: Number(xywh[4]) } }
        : {}),
    });
    i++;
  }
  return cues;
}

/** `hh:mm:ss.ttt` or `mm:ss.ttt` in seconds. */
function vttSeconds(value: string): number | undefined {
  const m = /^(?:(\d+):)?(\d{2}):(\d{2})\.(\d{3})$/.exec(value);
  if (!m) return undefined;
  return Number(m[1] ?? 0) * 3600 + Number(m[2]) * 60 + Number(m[3]) + Number(m[4]) / 1000;
}
