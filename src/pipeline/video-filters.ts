/**
 * Filter chains that turn a source's pictures into what an 8-bit SDR H.264 ladder carries, shared by the encode
 * run and the poster.
 */

import type { Rendition } from './plan.js';

/**
 * bwdif, one frame per interlaced frame (25i gives 25p, as players expect of a VOD ladder), only on frames
 * flagged interlaced, so a source mixing both keeps its progressive frames as they are.
 */
export const DEINTERLACE = 'bwdif=mode=send_frame:parity=auto:deint=interlaced';

/**
 * Drops an odd last column or row, which zimg refuses in 4:2:0 frames; on even frames it changes nothing and
 * copies nothing.
 */
export const EVEN_CROP = 'crop=trunc(iw/2)*2:trunc(ih/2)*2';

/**
 * Centred black bars for frames more than 1 % off `aspect`, so a stream that changes shape midway (a phone
 * turned in a WebRTC call) is boxed, not stretched; frames of the planned shape pass untouched.
 */
export function padToAspect(aspect: number): string {
  const a = aspect.toFixed(6);
  const shape = 'iw*sar/ih';
  // Commas inside the expressions are escaped for the filter graph's parser.
  return [
    `pad=w=if(lt(${shape}\\,${a}*0.99)\\,ceil(ih*${a}/sar/2)*2\\,iw)`,
    `h=if(gt(${shape}\\,${a}*1.01)\\,ceil(iw*sar/${a}/2)*2\\,ih)`,
    'x=(ow-iw)/2',
    'y=(oh-ih)/2',
  ].join(':');
}

/**
 * HDR (PQ, HLG) to SDR BT.709 8-bit in two zimg passes around Möbius `tonemap`, at a rung's size as it
 * works in 32-bit float (docs/design-notes.md, "Video filters"; costs in BENCHMARKS.md).
 */
export function toneMapToSdr(resize = ''): string {
  return [
    `zscale=${resize ? `${resize}:` : ''}t=linear:npl=100`,
    'format=gbrpf32le',
    'tonemap=tonemap=mobius:param=0.5:desat=0',
    'zscale=p=bt709:t=bt709:m=bt709:r=tv',
    'format=yuv420p',
  ].join(',');
}

/** Resizing algorithms of zimg that libswscale has under the same name. */
export const zimgFilters = new Set(['bilinear', 'bicubic', 'lanczos']);
/**
 * libswscale's kernel where zimg's default differs: its bicubic is B=0, C=0.6 (zimg's B=C=1/3 is softer), so
 * either resizer gives the same picture.
 */
const zimgParams: Record<string, string> = { bicubic: ':param_a=0:param_b=0.6' };

/** zscale's size and kernel for a rung; bicubic for a kernel zimg does not have (HDR sources only). */
export function zimgResize(r: Pick<Rendition, 'width' | 'height'>, scaleFlags: string): string {
  const filter = zimgFilters.has(scaleFlags) ? scaleFlags : 'bicubic';
  return `w=${r.width}:h=${r.height}:filter=${filter}${zimgParams[filter] ?? ''}`;
}

/**
 * Holds a VFR source's last frame until `end`: FFmpeg 5.1 gives it an average frame's duration, so a screen
 * recording's closing picture flashed by (docs/design-notes.md, "Video filters").
 */
export function holdVariableLastFrame(end: number, frameSeconds: number): string {
  const e = end.toFixed(6);
  const d = frameSeconds.toFixed(6);
  // Commas inside the expressions are escaped for the filter graph's parser.
  const isCopy = (t: string) => `between(${t}\\,${e}-0.001\\,${e}+0.001)`;
  return [
    'tpad=stop_mode=clone:stop=1',
    `select='not(${isCopy('t')})+gt(${e}-${d}-prev_selected_t\\,${d}/2)'`,
    `setpts='if(${isCopy('T')}\\,max(PTS-${d}/TB\\,PREV_OUTPTS+1)\\,PTS)'`,
  ].join(',');
}
