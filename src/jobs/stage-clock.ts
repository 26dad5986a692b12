/** Wall time spent in each stage of a task, from the moments stages begin. */
export class StageClock {
  private readonly spent = new Map<string, number>();
  private current?: { stage: string; since: number };
  private readonly started: number;

  constructor(private readonly now: () => number = Date.now) {
    this.started = now();
  }

  /** Starts `stage` (ending the one before); entering the current stage again changes nothing. */
  enter(stage: string): void {
    if (this.current?.stage === stage) return;
    this.stop();
    this.current = { stage, since: this.now() };
  }

  stop(): void {
    if (!this.current) return;
    const { stage, since } = this.current;
    this.spent.set(stage, (this.spent.get(stage) ?? 0) + (this.now() - since));
    this.current = undefined;
  }

  /** Seconds per stage in the order they ran, with `total` last. */
  seconds(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [stage, ms] of this.spent) out[stage] = Math.round(ms) / 1000;
    out.total = Math.round(this.now() - this.started) / 1000;
    return out;
  }
}

/**
 * Seconds left in a task, from the speed measured while encoding: the fraction of the whole task done per
 * second since encoding began, extrapolated to the end. Undefined until there is a measurement.
 */
export class EtaEstimator {
  private origin?: { t: number; done: number };
  private last?: { t: number; eta: number };

  constructor(private readonly now: () => number = Date.now) {}

  /** `done` is the fraction (0..1) of the whole task done; `measuring` is true while encoding. */
  update(done: number, measuring: boolean): number | undefined {
    const t = this.now();
    if (measuring) {
      if (!this.origin) {
        this.origin = { t, done };
        return undefined;
      }
      const rate = (done - this.origin.done) / (t - this.origin.t);
      if (done - this.origin.done > 0.005 && t - this.origin.t >= 300 && rate > 0) {
        this.last = { t, eta: (1 - done) / rate / 1000 };
        return Math.round(this.last.eta);
      }
    }
    if (!this.last) return undefined;
    return Math.max(0, Math.round(this.last.eta - (t - this.last.t) / 1000));
  }
}
