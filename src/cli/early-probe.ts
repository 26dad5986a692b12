import path from 'node:path';
import { loadConfig, type Config } from '../config/config.js';
import { probePacketSeconds } from '../jobs/probe-packets.js';
import { findSetpriv } from '../process/parent-death.js';
import { probeSource, type ProbeResult } from '../pipeline/probe.js';
import { defaultTools } from '../pipeline/tools.js';
import { parseConvertArgs, type ConvertArgs } from './convert-args.js';

/** The command line and settings `startProbe` read, with the probe it started: `runConvert` reads them once. */
export interface StartedConvert {
  parsed: ConvertArgs;
  config: Config;
  probed: Promise<ProbeResult>;
}

/**
 * Starts the probe of `convert`'s input while the rest of the command loads, so the two overlap. Undefined
 * when the command line or the settings are wrong: `runConvert` then reports them.
 */
export function startProbe(args: string[]): StartedConvert | undefined {
  try {
    const parsed = parseConvertArgs(args);
    if (!parsed) return undefined;
    const config = loadConfig(parsed.env);
    const tools = defaultTools(config.tools);
    const probed = probeSource(path.resolve(parsed.input), {
      ffprobe: tools.ffprobe,
      ffmpeg: tools.ffmpeg,
      tiedToParent: false,
      packetSeconds: probePacketSeconds(config),
    });
    // The programs that follow are tied to this process through setpriv: its check runs beside the probe.
    void findSetpriv();
    // Awaited by the conversion; until then a rejection must not count as unhandled.
    probed.catch(() => undefined);
    return { parsed, config, probed };
  } catch {
    return undefined;
  }
}
