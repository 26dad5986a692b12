import { readFile, stat, writeFile } from 'node:fs/promises';
import { TaskFailure } from '../domain/failures.js';

/** One cue: seconds from the start of the video, and its text (WebVTT markup of `<i>`, `<b>`, `<u>` only). */
export interface Cue {
  start: number;
  end: number;
  text: string;
}

/** Largest subtitle file read: a feature film's SRT is about 100 KB. */
export const MAX_SUBTITLE_BYTES = 10 * 1024 * 1024;

/** Text codecs FFmpeg converts to WebVTT; any other subtitle stream (PGS, DVB, VobSub…) is a picture. */
export const TEXT_SUBTITLE_CODECS = new Set(['mov_text', 'subrip', 'srt', 'webvtt', 'ass', 'ssa', 'text']);

const TIMING =
  /^\s*((?:\d+:)?\d{1,2}:\d{2}[.,]\d{1,3})\s*-->\s*((?:\d+:)?\d{1,2}:\d{2}[.,]\d{1,3})(?:\s+.*)?$/;

/** A timestamp of SRT (`00:01:02,500`) or WebVTT (`01:02.500`, `00:01:02.500`) in seconds. */
function seconds(stamp: string): number {
  const [clock, fraction = '0'] = stamp.split(/[.,]/);
  const parts = clock!.split(':').map(Number);
  const whole = parts.reduce((sum, p) => sum * 60 + p, 0);
  return whole + Number(fraction.padEnd(3, '0')) / 1000;
}

/**
 * A subtitle file's text: UTF-8, UTF-16 with its byte-order mark (Notepad's "Unicode"), else Windows-1252 (old
 * SRT files); refused when it holds NUL or other control characters, as a binary file does.
 */
export function decodeSubtitleBytes(bytes: Buffer): string {
  const utf16 =
    bytes[0] === 0xff && bytes[1] === 0xfe
      ? 'utf-16le'
      : bytes[0] === 0xfe && bytes[1] === 0xff
        ? 'utf-16be'
        : undefined;
  if (utf16) {
    let text: string;
    try {
      text = new TextDecoder(utf16, { fatal: true }).decode(bytes);
    } catch {
      throw new Error(`it starts as ${utf16.toUpperCase()} text but does not decode as such`);
    }
    if ([...text].some((c) => c.charCodeAt(0) < 0x20 && hasControlBytes(Buffer.from([c.charCodeAt(0)]))))
      throw new Error('it holds control characters: not a text file');
    return text.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n');
  }
  if (bytes.includes(0)) throw new Error('it is a binary file, not text');
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    text = new TextDecoder('windows-1252').decode(bytes);
  }
  text = text.replace(/^\uFEFF/, '');
  if (hasControlBytes(bytes)) throw new Error('it holds control characters: not a text file');
  return text.replace(/\r\n?/g, '\n');
}

/** Bytes below 0x20 other than tab, line feed, form feed, carriage return and escape: a binary file's. */
function hasControlBytes(bytes: Buffer): boolean {
  return bytes.some((b) => b < 0x20 && ![0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1b].includes(b));
}

/**
 * The cues of an SRT or WebVTT text (ASS styling and unknown tags dropped). A block with a timing line that
 * does not parse, an end before its start, or no cue at all is an Error saying so; overlapping cues are kept.
 */
export function parseSubtitles(text: string): Cue[] {
  const blocks = text.split(/\n{2,}/).map((b) => b.split('\n').filter((l) => l.trim() !== ''));
  const isVtt = /^WEBVTT(?:[ \t].*)?$/.test(blocks[0]?.[0] ?? '');
  const cues: Cue[] = [];
  blocks.forEach((lines, i) => {
    if (!lines.length || (isVtt && i === 0)) return;
    if (isVtt && /^(NOTE|STYLE|REGION)\b/.test(lines[0]!)) return;
    const at = lines.findIndex((l) => l.includes('-->'));
    if (at < 0 || at > 1) {
      throw new Error(`block ${i + 1} is not a cue ("${lines[0]!.slice(0, 40)}")`);
    }
    const timing = TIMING.exec(lines[at]!);
    if (!timing)
      throw new Error(`the timestamps of cue ${cues.length + 1} do not parse ("${lines[at]!.slice(0, 60)}")`);
    const start = seconds(timing[1]!);
    const end = seconds(timing[2]!);
    if (!(end > start))
      throw new Error(`cue ${cues.length + 1} ends before it starts (${timing[1]} --> ${timing[2]})`);
    const body = lines
      .slice(at + 1)
      .map(cleanLine)
      .filter(Boolean)
      .join('\n');
    if (body) cues.push({ start, end, text: body });
  });
  if (!cues.length) throw new Error('it holds no cues');
  return cues;
}

/** One line of cue text as WebVTT takes it: `<i>`, `<b>`, `<u>` kept, other tags and ASS overrides dropped. */
function cleanLine(line: string): string {
  return line
    .replace(/\{\\[^}]*\}/g, '')
    .replace(/<(\/?)([a-z]+)[^>]*>/gi, (_, close: string, tag: string) =>
      ['i', 'b', 'u'].includes(tag.toLowerCase()) ? `<${close}${tag.toLowerCase()}>` : '',
    )
    .replace(/&(?!(?:amp|lt|gt|nbsp|lrm|rlm);)/g, '&amp;')
    .replace(/<(?!\/?[ibu]>)/g, '&lt;')
    .replace(/-->/g, '→')
    .trim();
}

/** Cues clipped to the video: those starting at or after its end dropped, those running past it ended there. */
export function clipCues(cues: Cue[], duration: number): Cue[] {
  return cues.filter((c) => c.start < duration).map((c) => ({ ...c, end: Math.min(c.end, duration) }));
}

function stamp(s: number): string {
  const ms = Math.round(s * 1000);
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor(ms / 60_000) % 60;
  const sec = Math.floor(ms / 1000) % 60;
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${pad(h)}:${pad(m)}:${pad(sec)}.${pad(ms % 1000, 3)}`;
}

export function toWebVtt(cues: Cue[]): string {
  return `WEBVTT\n\n${cues.map((c) => `${stamp(c.start)} --> ${stamp(c.end)}\n${c.text}\n`).join('\n')}`;
}

/**
 * Writes an SRT or WebVTT file as WebVTT clipped to `duration` into `out`, returning the cue count; a file
 * that is not subtitles is `invalid_subtitles` naming it (`name`) and why.
 */
export async function normaliseSubtitles(
  file: string,
  out: string,
  { name, duration }: { name: string; duration: number },
): Promise<number> {
  const fail = (why: string) =>
    new TaskFailure('invalid_subtitles', `the subtitle file "${name}" cannot be used: ${why}`);
  if ((await stat(file)).size > MAX_SUBTITLE_BYTES) {
    throw fail(`it is larger than ${MAX_SUBTITLE_BYTES / 1024 / 1024} MB`);
  }
  let cues: Cue[];
  try {
    cues = clipCues(parseSubtitles(decodeSubtitleBytes(await readFile(file))), duration);
  } catch (err) {
    throw fail((err as Error).message);
  }
  if (!cues.length) throw fail('every cue starts after the end of the video');
  await writeFile(out, toWebVtt(cues));
  return cues.length;
}
