/**
 * Filter chains that turn a source's pictures into what an 8-bit SDR H.264 ladder carries, shared by the encode
 * run and the poster.
 */

import type { Rendition } from './plan.js';

/**
 * FFmpeg's deinterlacer as the pipeline runs it: bwdif (motion-adaptive, edge-directed, slice-threaded), one
 * progressive frame per interlaced frame (25i gives 25p, as players expect of a VOD ladder), and only frames
 * flagged interlaced: a source mixing progressive and interlaced parts keeps its progressive frames as they are.
 */
export const DEINTERLACE = 'bwdif=mode=send_frame:parity=auto:deint=interlaced';

/**
 * Drops an odd last column or row, which zimg refuses in 4:2:0 frames; on even frames it changes nothing and
 * copies nothing.
 */
export const EVEN_CROP = 'crop=trunc(iw/2)*2:trunc(ih/2)*2';

/**
 * Black bars, centred, for frames whose displayed shape differs from `aspect` (width / height) by more than 1 %:
 * a stream that changes shape midway (a WebRTC recording of a phone turned sideways) is pillarboxed or
 * letterboxed into the rungs planned from its first frames instead of stretched. FFmpeg evaluates the sizes
 * again when it rebuilds the graph for new frames; on frames of the planned shape it changes nothing and copies
 * nothing.
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
 * HDR (PQ or HLG, BT.2020) to SDR BT.709 in 8-bit 4:2:0 limited range, by zimg and FFmpeg's `tonemap`: the
 * frames are resized (when `resize` says how) and made linear light in one zimg pass, tone-mapped, then given
 * BT.709 primaries, transfer and matrix in a second one (a separate primaries pass before the tone mapping
 * cost 6 % more and scored lower). Möbius, linear up to half of SDR white: what lies in SDR's range keeps its
 * brightness and contrast, highlights roll off instead of clipping. On a pattern taken from SDR to PQ or HLG
 * and back it comes within 27–28 dB PSNR of the SDR original, against 16–19 dB for Hable (darker: SDR white at
 * 60 %) and 14–17 dB for no tone mapping. Done at a rung's size rather than the source's: it works in 32-bit
 * float per channel, and a quarter of the pixels costs a quarter.
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
 * Holds the last frame of a variable frame rate source until the video's `end` (seconds on the encode's
 * timeline). Its frames keep their own times, but FFmpeg 5.1 gives the last one the duration of an average
 * frame (`frameSeconds`): a screen recording that shows its last picture for 1.6 s ended that much early, the
 * picture flashing by. `tpad` adds one copy of the last frame, at the instant that frame ends (the video's end,
 * when the source says how long its last frame lasts); `select` drops the copy when the last frame lasts no
 * longer than an average one anyway, and `setpts` moves it an average frame back, so that the package ends
 * where the source does. Frames elsewhere are never touched: only one within a millisecond of `end` can be the
 * copy (a real frame cannot start where the video ends).
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
