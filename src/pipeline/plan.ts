import { languageName, safeLabel, sameLanguage, toBcp47 } from './languages.js';
import { TEXT_SUBTITLE_CODECS } from './subtitles.js';
import { isHdr, type AudioStreamInfo, type MediaInfo } from './media-info.js';
import { planThumbnails, type ThumbnailPlan } from './thumbnails.js';
import { videoCodecSpecs, type VideoCodec } from './video-codecs.js';

export type OutputFormat = 'dash' | 'hls';

/**
 * What resizes the frames to each rung: zimg through FFmpeg's `zscale` (vectorised, slice-threaded: less than
 * half of libswscale's CPU for the same bicubic result) or libswscale's `scale`.
 */
export type Scaler = 'zscale' | 'swscale';

/** One rung of the ladder as configured: `height` is the short side of the picture (720 = 720p). */
export interface RungSpec {
  height: number;
  /** Target video bitrate in bits per second. */
  bitrate: number;
}

export interface EncodeSettings {
  ladder: RungSpec[];
  /** Seconds; also the keyframe interval, so segments align across renditions. */
  segmentDuration: number;
  /** libx264 preset. */
  preset: string;
  /** Peak bitrate as a multiple of the target (VBV-capped VBR): 1 never exceeds the target over `bufsize`. */
  maxrateFactor: number;
  /** VBV buffer as a multiple of the target bitrate, e.g. 2. */
  bufsizeFactor: number;
  audioBitrate: number;
  /** Copy AAC-LC mono or stereo audio at 44.1/48 kHz and at most 1.5 × `audioBitrate` instead of encoding it. */
  audioCopy: boolean;
  /** Sources above this frame rate are reduced to it. */
  maxFrameRate: number;
  formats: OutputFormat[];
  scaler: Scaler;
  /** Seek-bar thumbnail sheets (DASH image track, WebVTT) and HLS I-frame playlists; default on. */
  thumbnails?: boolean;
  /** Each codec gets the whole ladder at its own bitrates (see `videoCodecSpecs`), H.264 the rung's own. */
  codecs: VideoCodec[];
  /** `all` (default): every audio stream of the source; `first`: one, the track that would be the default. */
  audioTracks?: 'all' | 'first';
  /** The default audio track's language (BCP 47 or ISO 639), before the source's default disposition. */
  defaultAudioLanguage?: string;
  /** Subtitle files beside the input to package, after the input's own text streams. */
  subtitles?: SidecarSubtitle[];
}

/** A subtitle file named by the request (SRT or WebVTT, a key in the input storage). */
export interface SidecarSubtitle {
  filename: string;
  language: string;
  label?: string;
  forced?: boolean;
}

/** One text track of the package, packaged as WebVTT (`wvtt` in fMP4 for DASH, WebVTT segments for HLS). */
export interface TextTrackPlan {
  /** Directory and stream name in the package: `text_1`, `text_2`… */
  name: string;
  /** BCP 47, `und` when nobody said. */
  language: string;
  label: string;
  /** Forced narrative (shown when subtitles are otherwise off): HLS FORCED=YES, DASH role forced-subtitle. */
  forced: boolean;
  /** The input's own stream, or a file named by the request. */
  source: { embedded: number; codec: string } | { sidecar: string };
}

export interface Rendition {
  /** Directory and representation name: `video_720p` for H.264, `video_av1_720p` for another codec. */
  name: string;
  codec: VideoCodec;
  width: number;
  height: number;
  bitrate: number;
  maxrate: number;
  bufsize: number;
}

export interface EncodePlan {
  /** Every codec's renditions, smallest first, in the order of `codecs` within a size. */
  renditions: Rendition[];
  /** The codecs encoded: those asked for, less those this input cannot have (`codecsLeftOut`). */
  codecs: VideoCodec[];
  /** Codecs asked for and not encoded, or encoded without some rungs, and why. */
  codecsLeftOut: { codec: VideoCodec; reason: string }[];
  /** Keyframes every `gopFrames` frames rather than by time: an encoder of the plan cannot be told where. */
  keyframesByCount: boolean;
  /**
   * The audio tracks as packaged, in the source's order, each the source's stream copied or AAC encoded at
   * these settings; exactly one is the default. Empty for a silent input.
   */
  audioTracks: AudioPlan[];
  /** Text tracks: the input's text subtitle streams, then the request's files. */
  textTracks: TextTrackPlan[];
  /** Subtitle streams of the input left out, and why (pictures: PGS, DVB, VobSub). */
  skippedSubtitles: { index: number; codec: string; reason: string }[];
  segmentDuration: number;
  /** Frame rate limit applied by a filter, when the source is faster than `maxFrameRate`. */
  frameRateLimit?: number;
  /** Frames per segment at the output frame rate: the keyframe interval (keyframes are forced by time). */
  gopFrames: number;
  /**
   * x264's `-g`, above any segment's frame count so the only keyframes are the forced ones (rounded down, 119
   * frames for 4 s at 29.83 fps, it put a wasted keyframe just before a forced one every few segments).
   */
  keyint: number;
  /**
   * VFR sources keep every frame at its own time: on FFmpeg's constant grid at the average rate, bursts (a
   * screen recording's scrolling) lost frames and pauses got copies.
   */
  keepFrameTiming: boolean;
  preset: string;
  formats: OutputFormat[];
  /** The resizer for this input: libswscale where zimg cannot take the frames (see `scalerFor`). */
  scaler: Scaler;
  /**
   * Whether the top rendition is at the source's size: every configured rung was larger than the input, or
   * the input sits between two rungs (well above the lower one).
   */
  sourceSizedRung: boolean;
  /**
   * Interlaced sources (camcorders, broadcast captures) are deinterlaced to progressive frames at the same
   * frame rate before anything else: players show H.264 progressive, and scaling fields woven together combs.
   */
  deinterlace: boolean;
  /**
   * HDR sources (PQ or HLG) are tone-mapped to SDR BT.709: an 8-bit H.264 rung tagged PQ or HLG bands, and
   * many players show it washed out. Done by zimg, so not with SCALER=swscale.
   */
  toneMap: boolean;
  /**
   * Seconds the last video frame is held so that the video lasts as long as the audio (a recording whose
   * camera stopped first, a podcast's single picture): DASH players end the presentation with the video.
   */
  holdLastFrame?: number;
  /** The seek-bar thumbnails, taken from the same decoded frames; absent when turned off. */
  thumbnails?: ThumbnailPlan;
}

export interface AudioPlan {
  /** Directory and stream name in the package: `audio` for the first track, `audio_2`, `audio_3`… after it. */
  name: string;
  /** The source's stream, for `-map 0:N`. */
  sourceIndex: number;
  /** Bits per second (the source's, when copied). */
  bitrate: number;
  channels: number;
  sampleRate: number;
  /** The source's AAC goes into the package as it is: no second generation of lossy coding, no encoder's CPU. */
  copy: boolean;
  /**
   * The audio starts after the video: silence fills the gap (so it is encoded, not copied). DASH players
   * start the presentation where every stream has begun, which skipped the opening video.
   */
  padStart?: boolean;
  /** BCP 47 (`fr` for the container's `fra`), `und` when the source does not say. */
  language: string;
  /** What a player's menu shows: the stream's title, else the language's name, else `Audio N`. */
  label: string;
  /** The one default track: HLS `DEFAULT=YES`, DASH role `main` (the others are `alternate`). */
  isDefault: boolean;
  /** Audio description: HLS `public.accessibility.describes-video`, DASH role `description` and Accessibility. */
  describesVideo: boolean;
}

const MIN_BITRATE = 150_000;
/** Audio and text tracks packaged at most (the source's first ones, the default audio track always). */
export const MAX_AUDIO_TRACKS = 16;
export const MAX_TEXT_TRACKS = 32;
/**
 * How much larger than the highest rung it reaches a source must be for a rendition at its own size: below
 * that, the extra rung would add little over the one under it.
 */
const SOURCE_RUNG_STEP = 1.2;

/** How far above AUDIO_BITRATE a source's AAC may be and still be copied rather than encoded down. */
export const AUDIO_COPY_HEADROOM = 1.5;

export const defaultLadder: RungSpec[] = [
  { height: 360, bitrate: 550_000 },
  { height: 720, bitrate: 2_800_000 },
];

/** Rounds to the nearest even number of at least 2 (H.264 with 4:2:0 needs even sizes). */
function even(value: number): number {
  return Math.max(2, Math.round(value / 2) * 2);
}

/**
 * What to encode: the rungs up to the source's size (never upscale) at its displayed aspect, plus one at its
 * own size when it sits well above a rung or below all (a 718p upload gets 360p and 718p, not 360p alone).
 */
export function planEncode(media: MediaInfo, settings: EncodeSettings): EncodePlan {
  if (settings.ladder.length === 0) throw new Error('the ladder has no rungs');
  const { width, height } = media.video;
  const shortSide = Math.min(width, height);
  const sizeFor = (rungShort: number) => {
    const k = rungShort / shortSide;
    return { width: even(width * k), height: even(height * k) };
  };
  const ladder = [...settings.ladder].sort((a, b) => a.height - b.height);
  const seen = new Set<number>();
  const rungs: { size: { width: number; height: number }; key: number; bitrate: number }[] = [];
  const add = (rungShort: number, bitrate: number) => {
    const size = sizeFor(rungShort);
    const key = Math.min(size.width, size.height);
    if (seen.has(key)) return;
    seen.add(key);
    rungs.push({ size, key, bitrate });
  };
  for (const rung of ladder) {
    if (rung.height <= shortSide) add(rung.height, rung.bitrate);
  }
  const below = ladder.filter((r) => r.height <= shortSide).at(-1);
  const above = ladder.find((r) => r.height > shortSide);
  const sourceSizedRung = !!above && (!below || shortSide >= below.height * SOURCE_RUNG_STEP);
  if (sourceSizedRung) {
    // The bitrate of the rung above for the pixels of the source, never less than the rung below's.
    const areaRatio = (shortSide * shortSide) / (above.height * above.height);
    const bitrate = Math.max(MIN_BITRATE, below?.bitrate ?? 0, Math.round(above.bitrate * areaRatio));
    add(Math.max(2, Math.floor(shortSide / 2) * 2), bitrate);
  }

  const fps = media.video.frameRate > 0 ? media.video.frameRate : 30;
  const frameRateLimit = fps > settings.maxFrameRate + 0.01 ? settings.maxFrameRate : undefined;
  const keepFrameTiming = media.video.variableFrameRate && !frameRateLimit;
  const largest = Math.max(...rungs.map((r) => Math.min(r.size.width, r.size.height)));
  const { codecs, codecsLeftOut } = chooseCodecs(settings.codecs, keepFrameTiming, largest);
  const renditions: Rendition[] = [];
  for (const { size, key, bitrate: h264Bitrate } of rungs) {
    for (const codec of codecs) {
      const spec = videoCodecSpecs[codec];
      if (Math.min(size.width, size.height) < spec.minSide) continue;
      const bitrate = Math.round(h264Bitrate * spec.bitrateFactor);
      renditions.push({
        name: codec === 'h264' ? `video_${key}p` : `video_${codec}_${key}p`,
        codec,
        ...size,
        bitrate,
        maxrate: Math.round(bitrate * settings.maxrateFactor),
        bufsize: Math.round(bitrate * settings.bufsizeFactor),
      });
    }
  }
  for (const codec of codecs) {
    const { minSide } = videoCodecSpecs[codec];
    const small = rungs.filter((r) => Math.min(r.size.width, r.size.height) < minSide);
    if (small.length) {
      codecsLeftOut.push({
        codec,
        reason: `its encoder takes at least ${minSide} pixels a side: no ${small.map((r) => `${r.key}p`).join(', ')}`,
      });
    }
  }

  const outputFps = frameRateLimit ?? fps;
  const audioTracks = planAudioTracks(media, settings);
  const hold = heldSeconds(media, audioTracks, outputFps);
  const keyframesByCount = codecs.some((c) => videoCodecSpecs[c].keyframesByCount);
  const framesPerSegment = outputFps * settings.segmentDuration;
  return {
    renditions,
    codecs,
    codecsLeftOut,
    keyframesByCount,
    audioTracks,
    ...planTextTracks(media, settings),
    segmentDuration: settings.segmentDuration,
    frameRateLimit,
    // Keyframes by count are never short of a segment: the packager cuts at the first keyframe at or after
    // the target, so 119 frames of 29.83 fps (3.99 s) made segments of 8 s.
    gopFrames: Math.max(
      1,
      keyframesByCount ? Math.ceil(framesPerSegment - 1e-6) : Math.round(framesPerSegment),
    ),
    // A variable rate may come in bursts well above its average: up to the highest rate let through.
    keyint: Math.ceil((keepFrameTiming ? settings.maxFrameRate : outputFps) * settings.segmentDuration) + 1,
    keepFrameTiming,
    preset: settings.preset,
    formats: settings.formats,
    scaler: scalerFor(media, settings.scaler),
    sourceSizedRung,
    deinterlace: media.video.interlaced,
    toneMap: isHdr(media.video) && settings.scaler === 'zscale',
    ...(hold ? { holdLastFrame: hold } : {}),
    ...(settings.thumbnails !== false ? { thumbnails: planThumbnails(media, renditions.at(-1)!) } : {}),
  };
}

/**
 * The codecs asked for, once each, less those that cannot key a VFR source's times (they would not line up)
 * or encode even the largest rung; H.264 when none is left.
 */
function chooseCodecs(
  wanted: readonly VideoCodec[],
  keepFrameTiming: boolean,
  largestSide: number,
): { codecs: VideoCodec[]; codecsLeftOut: { codec: VideoCodec; reason: string }[] } {
  const codecsLeftOut: { codec: VideoCodec; reason: string }[] = [];
  const codecs = [...new Set(wanted.length ? wanted : (['h264'] as const))].filter((codec) => {
    const spec = videoCodecSpecs[codec];
    const reason =
      keepFrameTiming && spec.keyframesByCount
        ? `the frame rate varies, and its encoder (${spec.encoder}) cannot place keyframes at the segments' times`
        : largestSide < spec.minSide
          ? `its encoder takes at least ${spec.minSide} pixels a side, more than every rung has`
          : undefined;
    if (reason) codecsLeftOut.push({ codec, reason });
    return !reason;
  });
  if (codecs.length === 0) codecs.push('h264');
  return { codecs, codecsLeftOut };
}

/** How far apart stream starts or ends must be to be corrected: more than a player's slack, a few frames. */
const AV_GAP_SECONDS = 0.1;

/** Whether the audio starts after the video by more than a few frames. */
function lateAudio(media: MediaInfo, audio: AudioStreamInfo): boolean {
  const { video } = media;
  if (video.startTime === undefined || audio.startTime === undefined) return false;
  return audio.startTime - video.startTime > AV_GAP_SECONDS;
}

/** Seconds by which the longest packaged audio track outlasts the video, when it does by more than a couple of frames. */
function heldSeconds(media: MediaInfo, tracks: AudioPlan[], fps: number): number | undefined {
  const { video } = media;
  if (video.duration === undefined || !tracks.length) return undefined;
  const videoEnd = (video.startTime ?? 0) + video.duration;
  const ends = tracks
    .map((t) => sourceAudio(media).find((a) => a.index === t.sourceIndex))
    .filter((a) => a?.duration !== undefined)
    .map((a) => (a!.startTime ?? 0) + a!.duration!);
  if (!ends.length) return undefined;
  const gap = Math.max(...ends) - videoEnd;
  return gap > Math.max(AV_GAP_SECONDS, 2 / fps) ? Math.round(gap * 1000) / 1000 : undefined;
}

/** Every decodable audio stream of the source, in its order (`audio` alone for a MediaInfo that lists none). */
export function sourceAudio(media: MediaInfo): AudioStreamInfo[] {
  return media.audioStreams ?? (media.audio ? [media.audio] : []);
}

/**
 * Every audio stream (or the default alone, `audioTracks: first`), each copied or encoded. The default: the
 * first in `defaultAudioLanguage` (not audio description first), else the source's default, else the first.
 */
function planAudioTracks(media: MediaInfo, settings: EncodeSettings): AudioPlan[] {
  const streams = sourceAudio(media);
  if (!streams.length) return [];
  const wanted = settings.defaultAudioLanguage;
  const inWanted = wanted ? streams.filter((a) => sameLanguage(toBcp47(a.language), wanted)) : [];
  const chosen =
    inWanted.find((a) => !a.describesVideo) ??
    inWanted[0] ??
    streams.find((a) => a.isDefault && !a.describesVideo) ??
    streams.find((a) => !a.describesVideo) ??
    streams[0]!;
  // A file may hold hundreds of streams; each track is an output of the encode and a stream of the packager.
  const room = MAX_AUDIO_TRACKS - (streams.indexOf(chosen) < MAX_AUDIO_TRACKS ? 0 : 1);
  const kept =
    settings.audioTracks === 'first' ? [chosen] : streams.filter((a, i) => a === chosen || i < room);
  return kept.map((stream, i) => {
    const late = lateAudio(media, stream);
    const coded = planAudio(stream, late ? { ...settings, audioCopy: false } : settings);
    const language = toBcp47(stream.language);
    const label =
      safeLabel(stream.title) ??
      (languageName(language) ?? `Audio ${i + 1}`) + (stream.describesVideo ? ' (audio description)' : '');
    return {
      name: i === 0 ? 'audio' : `audio_${i + 1}`,
      sourceIndex: stream.index,
      ...coded,
      ...(late ? { padStart: true } : {}),
      language,
      label,
      isDefault: stream === chosen,
      describesVideo: !!stream.describesVideo,
    };
  });
}

/**
 * The input's text subtitle streams (converted to WebVTT), then the request's files; picture subtitles cannot
 * become WebVTT and are left out, said in the plan's warnings.
 */
function planTextTracks(
  media: MediaInfo,
  settings: EncodeSettings,
): Pick<EncodePlan, 'textTracks' | 'skippedSubtitles'> {
  const streams = media.subtitles ?? [];
  const skippedSubtitles = streams
    .filter((s) => !TEXT_SUBTITLE_CODECS.has(s.codec))
    .map((s) => ({ index: s.index, codec: s.codec, reason: 'a picture-based format, not text' }));
  const text = streams.filter((s) => TEXT_SUBTITLE_CODECS.has(s.codec));
  const room = Math.max(0, MAX_TEXT_TRACKS - (settings.subtitles?.length ?? 0));
  for (const s of text.slice(room)) {
    skippedSubtitles.push({
      index: s.index,
      codec: s.codec,
      reason: `more than ${MAX_TEXT_TRACKS} text tracks`,
    });
  }
  const embedded = text.slice(0, room).map((s) => ({
    language: toBcp47(s.language),
    label: safeLabel(s.title),
    forced: s.forced,
    source: { embedded: s.index, codec: s.codec },
  }));
  const sidecars = (settings.subtitles ?? []).map((s) => ({
    language: toBcp47(s.language),
    label: safeLabel(s.label),
    forced: !!s.forced,
    source: { sidecar: s.filename },
  }));
  const textTracks = [...embedded, ...sidecars].map((t, i) => ({
    ...t,
    name: `text_${i + 1}`,
    label: t.label ?? `${languageName(t.language) ?? `Subtitles ${i + 1}`}${t.forced ? ' (forced)' : ''}`,
  }));
  return { textTracks, skippedSubtitles };
}

/**
 * Copies audio every player takes as it is (AAC-LC, mono or stereo, 44.1 or 48 kHz, near the configured
 * bitrate); encodes anything else (5.1, HE-AAC, Opus, Vorbis, an unstated rate) to stereo AAC-LC at 48 kHz.
 */
function planAudio(
  audio: AudioStreamInfo,
  settings: EncodeSettings,
): Pick<AudioPlan, 'bitrate' | 'channels' | 'sampleRate' | 'copy'> {
  const copy =
    settings.audioCopy &&
    audio.codec === 'aac' &&
    audio.profile === 'LC' &&
    (audio.channels === 1 || audio.channels === 2) &&
    (audio.sampleRate === 44_100 || audio.sampleRate === 48_000) &&
    audio.bitRate !== undefined &&
    audio.bitRate <= settings.audioBitrate * AUDIO_COPY_HEADROOM;
  return copy
    ? { bitrate: audio.bitRate!, channels: audio.channels, sampleRate: audio.sampleRate, copy }
    : { bitrate: settings.audioBitrate, channels: 2, sampleRate: 48_000, copy };
}

/**
 * zimg refuses 4:2:0 frames of odd width or height (their chroma planes have no whole size), which libswscale
 * takes: such sources are resized by libswscale.
 */
function scalerFor(media: MediaInfo, wanted: Scaler): Scaler {
  const { codedWidth, codedHeight } = media.video;
  return codedWidth % 2 === 0 && codedHeight % 2 === 0 ? wanted : 'swscale';
}

/**
 * Bytes of media the plan makes for `seconds` of input at its nominal bitrates: every rung and the audio, or
 * only those named. x264 may overshoot a little on short inputs; callers add their own margin.
 */
export function nominalMediaBytes(
  plan: EncodePlan,
  seconds: number,
  only?: { renditions: Pick<Rendition, 'bitrate'>[]; audio: boolean },
): number {
  const renditions = only?.renditions ?? plan.renditions;
  const audio = (only ? only.audio : true) ? plan.audioTracks.reduce((sum, a) => sum + a.bitrate, 0) : 0;
  return ((renditions.reduce((sum, r) => sum + r.bitrate, 0) + audio) * seconds) / 8;
}

/**
 * Pixels per second of media the plan encodes, weighted by each codec's CPU per pixel against x264's: the
 * H.264-equivalent work that speeds are measured and estimated in.
 */
export function encodeWorkPixels(plan: Pick<EncodePlan, 'renditions'>, fps: number): number {
  return (
    plan.renditions.reduce((sum, r) => sum + r.width * r.height * videoCodecSpecs[r.codec].cpuFactor, 0) * fps
  );
}

/**
 * A named set of encoder settings a request can ask for with `"ladder": "<name>"`. Fields left out keep
 * the service's settings (LADDER, SEGMENT_DURATION, X264_PRESET, OUTPUT_FORMATS).
 */
export interface EncodeProfile {
  description: string;
  ladder: RungSpec[];
  segmentDuration?: number;
  preset?: string;
  /** Peak bitrate over the target; 1 with `bufsizeFactor` 1 is close to constant bitrate. */
  maxrateFactor?: number;
  bufsizeFactor?: number;
  formats?: OutputFormat[];
  codecs?: VideoCodec[];
}
