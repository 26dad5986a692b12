/** What the pipeline needs to know about an input, as read by ffprobe. */
export interface MediaInfo {
  /** Seconds. */
  duration: number;
  /** Bytes, when the container says. */
  size?: number;
  /** Timestamp of the first sample, seconds (MPEG-TS from a broadcast may start hours in); 0 when unknown. */
  startTime: number;
  formatName: string;
  video: VideoStreamInfo;
  /** The audio stream FFmpeg itself would take: the one marked default, else the most channels. */
  audio?: AudioStreamInfo;
  /** Every audio stream in a codec FFmpeg decodes, in the source's order (absent: `audio` alone). */
  audioStreams?: AudioStreamInfo[];
  /** Every subtitle stream, text or bitmap, in the source's order. */
  subtitles?: SubtitleStreamInfo[];
}

export interface VideoStreamInfo {
  /** Absolute stream index in the input, for `-map 0:N`. */
  index: number;
  codec: string;
  /** Coded size as stored. */
  codedWidth: number;
  codedHeight: number;
  /** Size as displayed: after rotation and with non-square pixels made square. */
  width: number;
  height: number;
  /** Degrees clockwise the player must rotate the stored frames (0, 90, 180, 270). */
  rotation: number;
  sampleAspectRatio: number;
  /** Frames per second (average); `variableFrameRate` tells whether frames are evenly spaced. */
  frameRate: number;
  variableFrameRate: boolean;
  pixelFormat: string;
  interlaced: boolean;
  /**
   * Transfer characteristic as ffprobe names it (`bt709`, `smpte2084` for PQ, `arib-std-b67` for HLG), when the
   * stream says.
   */
  colorTransfer?: string;
  /** Seconds of video, when the stream says (MP4/MOV do, Matroska does not): may be shorter than the audio. */
  duration?: number;
  /** Timestamp of the stream's first sample, seconds, when the stream says. */
  startTime?: number;
  /** The stream's time base as ffprobe states it (`1/15360`), when it does. */
  timeBase?: string;
}

export interface AudioStreamInfo {
  index: number;
  codec: string;
  channels: number;
  sampleRate: number;
  /** AAC profile as ffprobe names it (`LC`, `HE-AAC`…), when the codec has profiles. */
  profile?: string;
  /** Bits per second, when the container says (MP4/MOV do, Matroska often does not). */
  bitRate?: number;
  /** Seconds of audio and the timestamp of its first sample, when the stream says. */
  duration?: number;
  startTime?: number;
  /** The spoken language as the stream tags it (ISO 639 code, lower case), when it says one other than `und`. */
  language?: string;
  /** The stream's title tag (free text: a label, never trusted as syntax). */
  title?: string;
  /** Marked default in the container. */
  isDefault?: boolean;
  /** Marked as audio description (`disposition:visual_impaired`). */
  describesVideo?: boolean;
}

export interface SubtitleStreamInfo {
  index: number;
  /** ffprobe's codec name: `mov_text`, `subrip`, `webvtt`, `ass`, `hdmv_pgs_subtitle`… */
  codec: string;
  language?: string;
  title?: string;
  /** Marked forced (shown when subtitles are otherwise off: foreign-language lines). */
  forced: boolean;
}

/** HDR transfers: PQ (HDR10, Dolby Vision profile 8.1) and HLG (what phones record by default). */
const hdrTransfers = new Set(['smpte2084', 'arib-std-b67']);

/** Whether the video is HDR (PQ or HLG), which an 8-bit SDR H.264 ladder must tone-map. */
export function isHdr(video: Pick<VideoStreamInfo, 'colorTransfer'>): boolean {
  return video.colorTransfer !== undefined && hdrTransfers.has(video.colorTransfer);
}
