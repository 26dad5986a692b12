import type { StatusDocument } from './types.js';

interface Sample {
  t: number;
  p: number;
}

/** How far back the rate of progress is measured: long enough to be steady, short enough to follow. */
const WINDOW_MS = 30_000;

/**
 * Estimates the time left for running tasks from how fast their progress moved while this page watched
 * (the status document has no start time of the current attempt).
 */
export class EtaTracker {
  private readonly samples = new Map<string, Sample[]>();

  observe(doc: StatusDocument, now = Date.now()): void {
    if (doc.status !== 'processing') {
      this.samples.delete(doc.task_id);
      return;
    }
    const list = this.samples.get(doc.task_id) ?? [];
    const last = list.at(-1);
    // Progress going back means a new attempt: start over.
    if (last && doc.progress < last.p) list.length = 0;
    if (!last || doc.progress !== last.p || list.length === 0) list.push({ t: now, p: doc.progress });
    while (list.length > 2 && now - list[0]!.t > WINDOW_MS) list.shift();
    this.samples.set(doc.task_id, list);
  }

  /** Seconds left, or undefined while there is not enough to go on. */
  secondsLeft(id: string, now = Date.now()): number | undefined {
    const list = this.samples.get(id);
    if (!list || list.length < 2) return undefined;
    const first = list[0]!;
    const last = list.at(-1)!;
    const span = last.t - first.t;
    const done = last.p - first.p;
    if (span < 1500 || done <= 0 || last.p >= 100) return undefined;
    const perMs = done / span;
    const left = (100 - last.p) / perMs - (now - last.t);
    return Math.max(1, left / 1000);
  }

  forget(id: string): void {
    this.samples.delete(id);
  }
}
