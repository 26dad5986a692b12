import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { bundledPackagerPath } from '../src/pipeline/tools.js';

export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  node: string;
  ffmpeg: string;
  packager: string;
  /** 1-minute load average when the bench started: other work on the machine skews absolute times. */
  loadAverage: number;
}

export function machineInfo(): MachineInfo {
  const firstLine = (cmd: string, args: string[]) => {
    try {
      return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] })
        .toString()
        .split('\n')[0]!
        .trim();
    } catch {
      return 'unknown';
    }
  };
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    memoryGiB: Math.round(os.totalmem() / 1024 ** 3),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    ffmpeg: firstLine('ffmpeg', ['-hide_banner', '-version']),
    packager: firstLine(bundledPackagerPath(), ['--version']),
    loadAverage: Math.round(os.loadavg()[0]! * 100) / 100,
  };
}
