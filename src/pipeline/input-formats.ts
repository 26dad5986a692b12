/**
 * The FFmpeg demuxers an input may be read with (`-format_whitelist`). Only self-contained video containers
 * and raw video streams: never playlists or reference files (concat, HLS, DASH, image2 sequences…), which
 * make FFmpeg open other files named inside the upload, e.g. another user's input or any `.mp4` on disk.
 * A still image (png_pipe, jpeg_pipe…) is not a video either.
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
