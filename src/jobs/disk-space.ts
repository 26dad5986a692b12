import { statfs } from 'node:fs/promises';
import { TaskFailure, type FailureCode } from '../domain/failures.js';
import type { EncodePlan, Rendition } from '../pipeline/plan.js';

/** Bytes free for this process on the file system of `dir`. */
export async function freeBytes(dir: string): Promise<number> {
  const fs = await statfs(dir);
  return fs.bavail * fs.bsize;
}

export async function ensureFreeSpace(dir: string, needed: number): Promise<void> {
  const free = await freeBytes(dir);
  if (free < needed) {
    throw new TaskFailure(
      'disk_full',
      `not enough free disk space for this input: ${Math.round(needed / 1e6)} MB needed, ${Math.round(free / 1e6)} MB free`,
    );
  }
}

/**
 * Room a task keeps free in its work directory beyond what its plan says it writes: the programs' temporary
 * files, the poster, the copies of the replaced manifests, the package check's files.
 */
export const WORK_MARGIN_BYTES = 16 * 1024 * 1024;

/**
 * The most a run of `plan` writes: each rung's VBV bound (peak rate throughout plus a full buffer, as a short
 * clip may reach twice its bitrate), every audio track, and a twentieth for containers and manifests.
 */
export function mediaBytesBound(
  plan: EncodePlan,
  seconds: number,
  only?: { renditions: Pick<Rendition, 'maxrate' | 'bufsize'>[]; audio: boolean },
): number {
  const renditions = only?.renditions ?? plan.renditions;
  const audioRate = plan.audioTracks.reduce((sum, a) => sum + a.bitrate, 0);
  const audio = (only ? only.audio : true) ? audioRate * seconds : 0;
  const video = renditions.reduce((sum, r) => sum + r.maxrate * seconds + r.bufsize, 0);
  return ((video + audio) / 8) * 1.05;
}

/**
 * Free space a planned task needs in its work directory beside its input (docs/design-notes.md, "Work disk"):
 * the package, plus the early run's, the copy, the joined renditions and WORK_MARGIN_BYTES as they apply.
 */
export function workSpaceNeeded(
  plan: EncodePlan,
  seconds: number,
  options: { earlyManifest: boolean; copiedOnSameDisk: boolean; quality: boolean },
): number {
  const full = mediaBytesBound(plan, seconds);
  const [lowest] = plan.renditions;
  const early =
    options.earlyManifest && lowest && plan.renditions.length > 1
      ? 2 * mediaBytesBound(plan, seconds, { renditions: [lowest], audio: true })
      : 0;
  const copy = options.copiedOnSameDisk ? full : 0;
  const joined = options.quality
    ? mediaBytesBound(plan, seconds, { renditions: plan.renditions, audio: false })
    : 0;
  return full + early + copy + joined + WORK_MARGIN_BYTES;
}

/** Free space below which a disk counts as full: 64 MB, or a twentieth of a smaller disk than 1.28 GB. */
export const NEARLY_FULL_BYTES = 64 * 1024 * 1024;

export function nearlyFullBytes(diskBytes: number): number {
  return Math.min(NEARLY_FULL_BYTES, diskBytes / 20);
}

interface DiskState {
  /** Free for this process. */
  free: number;
  /** Used, the blocks reserved for root counted as free: a process running as root writes on into them. */
  used: number;
  /** The file system's size. */
  size: number;
}

async function diskState(dir: string): Promise<DiskState> {
  const fs = await statfs(dir);
  const free = fs.bavail * fs.bsize;
  return {
    free,
    used: (fs.blocks - fs.bfree) * fs.bsize,
    size: fs.blocks * fs.bsize,
  };
}

/** Failures that a full disk can cause (others, such as a missing input or a cancel, keep their code). */
const writeFailures = new Set<FailureCode>([
  'encode_failed',
  'package_failed',
  'qc_failed',
  'timeout',
  'internal',
]);

/**
 * A run's failure as `disk_full` (retried later) when `dir`'s disk is nearly full (below `nearlyFull`, or
 * nearlyFullBytes): FFmpeg and the packager do not always say so (docs/design-notes.md, "Work disk").
 */
export async function diskFullInstead(err: unknown, dir: string, nearlyFull?: number): Promise<unknown> {
  if (err instanceof TaskFailure && !writeFailures.has(err.code)) return err;
  const disk = await diskState(dir).catch(() => undefined);
  if (!disk || disk.free >= (nearlyFull ?? nearlyFullBytes(disk.size))) return err;
  return new TaskFailure('disk_full', `the worker's disk is full (${Math.round(disk.free / 1e6)} MB free)`, {
    cause: err,
  });
}

/** How long output may stop growing on a full work disk before the run is failed. */
const DISK_STALL_MS = 6_000;
const DISK_SAMPLE_MS = 1_000;

/**
 * Calls `onStall` once with `disk_full` when the work disk is under WORK_MARGIN_BYTES free and the output has
 * not grown for `stallMs`: seconds, not the watchdog's minutes, for programs that wait instead of failing.
 */
export class DiskStallWatch {
  private readonly timer: NodeJS.Timeout;
  private watching = false;
  private progress = -1;
  private advanced = false;
  private lastUsed = 0;
  private stalledSince?: number;
  private sampling = false;
  private fired = false;

  constructor(
    private readonly dir: string,
    private readonly onStall: (failure: TaskFailure) => void,
    private readonly stallMs = DISK_STALL_MS,
  ) {
    this.timer = setInterval(() => void this.sample(), Math.min(DISK_SAMPLE_MS, stallMs));
    this.timer.unref();
  }

  /**
   * The run's stage and progress. The watch looks during the encode (progress every half second), once it has
   * made progress: before its first frames nothing of the run's can have filled the disk.
   */
  report(stage: string, progress: number): void {
    if (stage !== 'encode') {
      this.watching = false;
      this.progress = -1;
      return;
    }
    if (progress > this.progress) {
      if (this.progress >= 0) this.watching = true;
      this.progress = progress;
      this.advanced = true;
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async sample(): Promise<void> {
    if (this.sampling || this.fired) return;
    this.sampling = true;
    try {
      const disk = await diskState(this.dir).catch(() => undefined);
      const grew = !!disk && disk.used > this.lastUsed;
      if (disk) this.lastUsed = disk.used;
      const advanced = this.advanced;
      this.advanced = false;
      // Fuller than a planned run leaves its disk (its margin): fuller than a run that fits ever makes it.
      const full = !!disk && disk.free < Math.min(WORK_MARGIN_BYTES, nearlyFullBytes(disk.size));
      if (!this.watching || !disk || !full || grew || advanced) {
        this.stalledSince = undefined;
        return;
      }
      this.stalledSince ??= Date.now();
      if (Date.now() - this.stalledSince < this.stallMs) return;
      this.fired = true;
      this.stop();
      this.onStall(
        new TaskFailure(
          'disk_full',
          `the worker's disk is full (${Math.round(disk.free / 1e6)} MB free) and the encode stopped writing`,
        ),
      );
    } finally {
      this.sampling = false;
    }
  }
}
