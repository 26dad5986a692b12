import { createRequire } from 'node:module';
import path from 'node:path';
import { runProcess } from '../process/run-process.js';
import type { Scaler } from './plan.js';
import { encodersFor, type VideoCodec } from './video-codecs.js';

/** Paths of the external programs the pipeline runs. */
export interface MediaTools {
  ffmpeg: string;
  ffprobe: string;
  packager: string;
  /** Validates manifests against the MPEG-DASH schema in the quality check (Debian: libxml2-utils). */
  xmllint: string;
}

const packagerBinaries: Record<string, string> = {
  'linux-x64': 'packager-linux-x64',
  'linux-arm64': 'packager-linux-arm64',
  'darwin-x64': 'packager-osx-x64',
  'darwin-arm64': 'packager-osx-arm64',
  'win32-x64': 'packager-win-x64.exe',
};

/** The Shaka Packager binary shipped inside the `shaka-packager` npm package. */
export function bundledPackagerPath(): string {
  const binary = packagerBinaries[`${process.platform}-${process.arch}`];
  if (!binary) throw new Error(`shaka-packager ships no binary for ${process.platform}/${process.arch}`);
  const pkgJson = createRequire(import.meta.url).resolve('shaka-packager/package.json');
  return path.join(path.dirname(pkgJson), 'bin', binary);
}

export function defaultTools(overrides: Partial<MediaTools> = {}): MediaTools {
  return {
    ffmpeg: overrides.ffmpeg ?? 'ffmpeg',
    ffprobe: overrides.ffprobe ?? 'ffprobe',
    packager: overrides.packager ?? bundledPackagerPath(),
    xmllint: overrides.xmllint ?? 'xmllint',
  };
}

/** Why an FFmpeg without zimg cannot run this configuration, and the two ways out. */
export const zscaleMissing =
  'FFmpeg was built without libzimg (its zscale filter resizes the renditions): install an FFmpeg built ' +
  'with it (Debian and Ubuntu package theirs so) or set SCALER=swscale';

export class ToolMissingError extends Error {
  override name = 'ToolMissingError';
}

/** What the configured pipeline needs of the tools beyond running. */
export interface ToolNeeds {
  /** FFmpeg's `zscale` filter (FFmpeg built with libzimg, as Debian's and Ubuntu's are), for SCALER=zscale. */
  zscale?: boolean;
  /** FFmpeg's encoders for the configured codecs (VIDEO_CODECS), by FFmpeg's names (`libsvtav1`…). */
  encoders?: string[];
}

/** What a pipeline with this resizer and these codecs needs of FFmpeg. */
export function toolNeedsFor(scaler: Scaler, codecs: readonly VideoCodec[]): ToolNeeds {
  return { zscale: scaler === 'zscale', encoders: encodersFor(codecs) };
}

/** The names of the video encoders this FFmpeg has (`ffmpeg -encoders`). */
export async function listVideoEncoders(ffmpeg: string): Promise<Set<string>> {
  const { stdout } = await runProcess(ffmpeg, ['-hide_banner', '-encoders'], { timeoutMs: 15_000 });
  // Lines such as ` V....D libx264   libx264 H.264 / AVC …`: the flags, then the name.
  return new Set(
    stdout
      .split('\n')
      .map((line) => /^\s*V\S{5}\s+(\S+)/.exec(line)?.[1])
      .filter((name): name is string => !!name),
  );
}

/** Why a codec cannot be encoded by this FFmpeg, for an operator and for a client. */
export function encoderMissing(encoders: string[], ffmpeg: string): string {
  return `FFmpeg at "${ffmpeg}" has no ${encoders.join(', ')} encoder (see ffmpeg -encoders): install an FFmpeg built with it (Debian's and Ubuntu's have libsvtav1, libvpx-vp9 and libx265) or leave the codec out of VIDEO_CODECS`;
}

/**
 * Checks that every tool runs (and FFmpeg has what `needs` asks for) and returns its version line; throws a
 * ToolMissingError a person can act on.
 */
export async function checkTools(
  tools: MediaTools,
  needs: ToolNeeds = {},
): Promise<Record<keyof MediaTools, string>> {
  const versionOf = async (name: keyof MediaTools, args: string[], hint: string) => {
    let stdout: string;
    try {
      ({ stdout } = await runProcess(tools[name], args, { timeoutMs: 15_000 }));
    } catch (err) {
      throw new ToolMissingError(
        `${name} not usable at "${tools[name]}" (${(err as Error).message}). ${hint}`,
      );
    }
    if (name === 'ffmpeg' && needs.zscale && !stdout.includes('--enable-libzimg')) {
      throw new ToolMissingError(`${zscaleMissing} (ffmpeg at "${tools.ffmpeg}")`);
    }
    if (name === 'ffmpeg' && needs.encoders?.length) {
      const have = await listVideoEncoders(tools.ffmpeg);
      const missing = needs.encoders.filter((e) => !have.has(e));
      if (missing.length) throw new ToolMissingError(encoderMissing(missing, tools.ffmpeg));
    }
    // xmllint prints its version on stderr: an empty stdout still means it ran.
    return stdout.split('\n')[0]?.trim() || 'found';
  };
  const [ffmpeg, ffprobe, packager, xmllint] = await Promise.all([
    versionOf(
      'ffmpeg',
      ['-hide_banner', '-version'],
      'Install it with: apt-get install ffmpeg (or set FFMPEG_PATH).',
    ),
    versionOf(
      'ffprobe',
      ['-hide_banner', '-version'],
      'It comes with the ffmpeg package (or set FFPROBE_PATH).',
    ),
    versionOf(
      'packager',
      ['--version'],
      'Run npm ci to install the shaka-packager package (or set PACKAGER_PATH).',
    ),
    versionOf(
      'xmllint',
      ['--version'],
      'Install it with: apt-get install libxml2-utils (or set XMLLINT_PATH).',
    ),
  ]);
  return { ffmpeg, ffprobe, packager, xmllint };
}
