import { appendFile, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { sheetName, type ThumbnailResult } from './thumbnails.js';

/** The HLS image playlist, beside the sheets. */
export const IMAGE_PLAYLIST = 'images.m3u8';

/** The DASH-IF scheme of a tiled thumbnail track: its value is the grid, `COLUMNSxROWS`. */
export const THUMBNAIL_TILE_SCHEME = 'http://dashif.org/thumbnail_tile';

/**
 * Adds the thumbnails to the MPD as DASH-IF's image AdaptationSet (what Shaka Player and dash.js read): a
 * "segment" per sheet, shared evenly by its tiles, from the video's first frame.
 */
export async function addThumbnailTrack(pkgDir: string, manifest: string, thumbs: ThumbnailResult) {
  const file = path.join(pkgDir, manifest);
  const mpd = await readFile(file, 'utf8');
  const period = mpd.lastIndexOf('</Period>');
  if (period < 0) throw new Error(`${manifest} has no Period to add the thumbnails to`);
  // At the start of the closing tag's line, so the manifest keeps its indentation.
  const end = mpd.lastIndexOf('\n', period) + 1;
  const { plan, sheets } = thumbs;
  const sheetSeconds = plan.interval * plan.columns * plan.rows;
  let bytes = 0;
  for (const sheet of sheets) bytes += (await stat(path.join(pkgDir, sheet))).size;
  // The mean rate over the sheets' time: what a player would read to show every thumbnail.
  const bandwidth = Math.max(1, Math.ceil((bytes * 8) / (sheets.length * sheetSeconds)));
  const ids = [...mpd.matchAll(/<AdaptationSet[^>]*\sid="(\d+)"/g)].map((m) => Number(m[1]));
  const id = ids.length ? Math.max(...ids) + 1 : 0;
  const template = path.posix.join(path.posix.dirname(sheets[0]!), sheetName(0).replace('0', '$Number$'));
  const set = [
    `    <AdaptationSet id="${id}" contentType="image" mimeType="image/jpeg">`,
    `      <Representation id="thumbnails" bandwidth="${bandwidth}" width="${plan.width * plan.columns}" height="${plan.height * plan.rows}">`,
    `        <EssentialProperty schemeIdUri="${THUMBNAIL_TILE_SCHEME}" value="${plan.columns}x${plan.rows}"/>`,
    `        <SegmentTemplate media="${escapeAttr(template)}" timescale="1" duration="${sheetSeconds}" startNumber="1"/>`,
    '      </Representation>',
    '    </AdaptationSet>',
    '',
  ].join('\n');
  await writeFile(file, mpd.slice(0, end) + set + mpd.slice(end));
}

function escapeAttr(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;');
}

/**
 * Adds the thumbnails to the HLS master as an image stream (`EXT-X-IMAGE-STREAM-INF`, Roku's tiles, which Shaka
 * Player reads too): a playlist of the sheets, each a segment with its `EXT-X-TILES` grid. Returns its key.
 */
export async function addHlsImagePlaylist(
  pkgDir: string,
  master: string,
  thumbs: ThumbnailResult,
  duration: number,
): Promise<string> {
  const { plan, sheets } = thumbs;
  const sheetSeconds = plan.interval * plan.columns * plan.rows;
  const dir = path.posix.dirname(sheets[0]!);
  const key = `${dir}/${IMAGE_PLAYLIST}`;
  const lengths = sheets.map((_, i) => Math.max(0.001, Math.min(sheetSeconds, duration - i * sheetSeconds)));
  const playlist = [
    '#EXTM3U',
    '#EXT-X-VERSION:7',
    `#EXT-X-TARGETDURATION:${Math.ceil(Math.max(...lengths))}`,
    '#EXT-X-MEDIA-SEQUENCE:1',
    '#EXT-X-PLAYLIST-TYPE:VOD',
    '#EXT-X-IMAGES-ONLY',
    ...sheets.flatMap((sheet, i) => [
      `#EXTINF:${lengths[i]!.toFixed(3)},`,
      `#EXT-X-TILES:RESOLUTION=${plan.width}x${plan.height},LAYOUT=${plan.columns}x${plan.rows},DURATION=${plan.interval.toFixed(3)}`,
      path.posix.basename(sheet),
    ]),
    '#EXT-X-ENDLIST',
    '',
  ].join('\n');
  await writeFile(path.join(pkgDir, key), playlist);
  let bytes = 0;
  for (const sheet of sheets) bytes += (await stat(path.join(pkgDir, sheet))).size;
  const bandwidth = Math.max(1, Math.ceil((bytes * 8) / Math.max(1, duration)));
  const masterFile = path.join(pkgDir, master);
  const text = await readFile(masterFile, 'utf8');
  const uri = path.posix.relative(path.posix.dirname(master), key);
  await appendFile(
    masterFile,
    `${text.endsWith('\n') ? '' : '\n'}#EXT-X-IMAGE-STREAM-INF:BANDWIDTH=${bandwidth},RESOLUTION=${plan.width}x${plan.height},CODECS="jpeg",URI="${uri}"\n`,
  );
  return key;
}
