import { existsSync } from 'node:fs';
import { cpuTimes, descendantsOf, memoryOf } from './proc.js';

export interface PeakMemory {
  /** Highest VmHWM seen per program name (node, ffmpeg, packager…), bytes. */
  byProgram: Record<string, number>;
  /** Highest sum of resident sets of the watched processes at one sample, bytes. */
  total: number;
}

export interface MonitorResult {
  peak: PeakMemory;
  /** Last CPU seconds seen per program name, summed over processes (a lower bound: up to one interval late). */
  cpuByProgram: Record<string, number>;
  /** Milliseconds from start until the watched file first existed. */
  firstFileMs?: number;
}

/**
 * Samples the processes under `roots` every `intervalMs` (peak resident memory, CPU seen) and watches for a file
 * to appear (the first playable manifest). Sampling reads /proc only, so it costs the bench, not the measured run.
 */
export class Monitor {
  private timer: NodeJS.Timeout | undefined;
  private readonly startedAt = performance.now();
  private readonly peaks = new Map<string, { name: string; peak: number; cpu: number }>();
  private peakTotal = 0;
  private firstFileMs: number | undefined;

  constructor(
    private readonly roots: () => number[],
    private readonly watchFile?: string,
    intervalMs = 50,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  private sample(): void {
    if (this.watchFile && this.firstFileMs === undefined && existsSync(this.watchFile)) {
      this.firstFileMs = performance.now() - this.startedAt;
    }
    let total = 0;
    const pids = new Set<number>();
    for (const root of this.roots()) {
      pids.add(root);
      for (const p of descendantsOf(root)) pids.add(p);
    }
    for (const pid of pids) {
      const mem = memoryOf(pid);
      if (!mem) continue;
      total += mem.rss;
      // Keyed by pid and name: a child sampled between fork and exec is still called node, and must not lend
      // that name to the program it becomes.
      const key = `${pid}:${mem.name}`;
      const seen = this.peaks.get(key) ?? { name: mem.name, peak: 0, cpu: 0 };
      seen.peak = Math.max(seen.peak, mem.peak);
      try {
        seen.cpu = cpuTimes(pid).self;
      } catch {
        // Exited between the two reads.
      }
      this.peaks.set(key, seen);
    }
    this.peakTotal = Math.max(this.peakTotal, total);
  }

  stop(): MonitorResult {
    this.sample();
    clearInterval(this.timer);
    this.timer = undefined;
    const byProgram: Record<string, number> = {};
    const cpuByProgram: Record<string, number> = {};
    for (const { name, peak, cpu } of this.peaks.values()) {
      byProgram[name] = Math.max(byProgram[name] ?? 0, peak);
      cpuByProgram[name] = (cpuByProgram[name] ?? 0) + cpu;
    }
    return { peak: { byProgram, total: this.peakTotal }, cpuByProgram, firstFileMs: this.firstFileMs };
  }
}
