/**
 * The demuxers an input may be read with: self-contained video only, never playlists or references (concat,
 * HLS, DASH, image2…), which open files named inside the upload, such as another user's input.
 */
export const inputFormatWhitelist = [
  'mov',
  'matroska',
  'avi',
  'flv',
  'mpegts',
  'mpeg',
  'mxf',
  'ogg',
  'asf',
  'nut',
  'dv',
  'ivf',
  'gif',
  'yuv4mpegpipe',
  'h264',
  'hevc',
  'm4v',
  'mpegvideo',
].join(',');

/** The FFmpeg input options that confine reading to the one local file handed over by the storage layer. */
export function inputGuardArgs(): string[] {
  return ['-protocol_whitelist', 'file', '-format_whitelist', inputFormatWhitelist];
}

/** The demuxer FFmpeg refused for not being on the whitelist, from its stderr; undefined otherwise. */
export function refusedFormat(stderr: string): string | undefined {
  return /\[([\w,]+) @ [^\]]*\] Format not on whitelist/.exec(stderr)?.[1];
}
