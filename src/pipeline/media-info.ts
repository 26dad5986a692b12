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
  audio?: AudioStreamInfo;
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
  /** Seconds of video, when the stream says (MP4/MOV do, Matroska does not): may be shorter than the audio. */
  duration?: number;
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
}
