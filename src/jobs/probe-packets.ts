import { PROBED_PACKET_SECONDS } from '../qc/source-durations.js';
import type { JobSettings } from './job-settings.js';

/**
 * Seconds of packets the input's probe lists for the package check (none when QC is off), so that a short
 * source needs no second ffprobe run. A module of its own: the CLI asks before the runner has loaded.
 */
export function probePacketSeconds(config: Pick<JobSettings, 'qc'>): number | undefined {
  return config.qc.mode !== 'off' ? PROBED_PACKET_SECONDS : undefined;
}
