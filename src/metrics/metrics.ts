import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { TaskRecord, TaskStatus } from '../domain/task.js';

/** Reads task counts by status from the queue when metrics are scraped. */
export type CountsSource = () => Promise<Record<TaskStatus, number>>;

export interface MetricsOptions {
  /** Node process metrics (CPU, memory, event loop, GC). */
  defaultMetrics?: boolean;
  counts?: CountsSource;
}

/**
 * The Prometheus metrics of one service instance, in a registry of its own (never the global default one,
 * so several services can run in one process, as the tests do).
 */
export class ServiceMetrics {
  readonly registry = new Registry();
  readonly tasksSubmitted: Counter<'outcome'>;
  readonly tasksFinished: Counter<'status' | 'code'>;
  readonly workerActive: Gauge;
  readonly stageSeconds: Histogram<'stage'>;
  readonly encodeSpeed: Histogram;
  readonly callbackDeliveries: Counter<'outcome'>;
  readonly chunkJobs: Counter<'kind' | 'outcome'>;
  readonly errors: Counter<'source' | 'kind'>;
  readonly httpSeconds: Histogram<'method' | 'route' | 'status_code'>;
  readonly eventStreams: Gauge;
  /** Output pixels encoded per second, by x264 preset, smoothed over recent tasks of this process. */
  private readonly pixelRates = new Map<string, number>();

  constructor(options: MetricsOptions = {}) {
    const registers = [this.registry];
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.tasksSubmitted = new Counter({
      name: 'dvc_tasks_submitted_total',
      help: 'Tasks submitted through POST /encode or POST /uploads?encode=true, by outcome (created, existing for a repeated Idempotency-Key).',
      labelNames: ['outcome'],
      registers,
    });
    this.tasksFinished = new Counter({
      name: 'dvc_tasks_finished_total',
      help: 'Tasks that reached a final status, by status and failure code (ok when completed).',
      labelNames: ['status', 'code'],
      registers,
    });
    const counts = options.counts;
    const fromQueue = (name: string, help: string, status: TaskStatus) =>
      new Gauge({
        name,
        help,
        registers,
        async collect() {
          if (!counts) return;
          try {
            this.set((await counts())[status]);
          } catch {
            // The queue is unreachable: /readyz says so; the gauge keeps its last value.
          }
        },
      });
    fromQueue('dvc_queue_depth', 'Tasks waiting in the queue (all workers).', 'queued');
    fromQueue('dvc_tasks_running', 'Tasks being processed (all workers).', 'processing');
    this.workerActive = new Gauge({
      name: 'dvc_worker_active_tasks',
      help: 'Tasks being processed by the worker of this process.',
      registers,
    });
    this.eventStreams = new Gauge({
      name: 'dvc_event_streams',
      help: 'Open GET /events streams (dashboards watching) of this process; they are not in the HTTP histogram.',
      registers,
    });
    this.stageSeconds = new Histogram({
      name: 'dvc_stage_duration_seconds',
      help: 'Wall time of each stage of a task (fetch, probe, encode, package, poster, qc, publish).',
      labelNames: ['stage'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
      registers,
    });
    this.encodeSpeed = new Histogram({
      name: 'dvc_encode_speed_ratio',
      help: 'Seconds of media encoded per second of encoding (× realtime), whole ladder at once.',
      buckets: [0.1, 0.25, 0.5, 1, 1.5, 2, 3, 4, 6, 8, 12, 16, 32],
      registers,
    });
    this.callbackDeliveries = new Counter({
      name: 'dvc_callback_deliveries_total',
      help: 'Completion callbacks by final outcome (delivered, or failed after all attempts).',
      labelNames: ['outcome'],
      registers,
    });
    this.chunkJobs = new Counter({
      name: 'dvc_chunk_jobs_total',
      help: 'Chunk jobs of split tasks run by this process, by kind (video, audio) and outcome (completed, failed, stopped).',
      labelNames: ['kind', 'outcome'],
      registers,
    });
    this.errors = new Counter({
      name: 'dvc_errors_total',
      help: 'Errors by source (task: a failed run, retried or not, by failure code; api: responses by HTTP status).',
      labelNames: ['source', 'kind'],
      registers,
    });
    this.httpSeconds = new Histogram({
      name: 'dvc_http_request_duration_seconds',
      help: 'HTTP requests by method, route pattern and status code.',
      labelNames: ['method', 'route', 'status_code'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
  }

  taskFinished(task: TaskRecord): void {
    this.tasksFinished.inc({
      status: task.status,
      code: task.status === 'completed' ? 'ok' : (task.error?.code ?? 'unknown'),
    });
  }

  /** Records the speed of one encode: media seconds, wall seconds, and output pixels per second of media. */
  encoded(preset: string, mediaSeconds: number, wallSeconds: number, pixelsPerMediaSecond: number): void {
    if (!(wallSeconds > 0) || !(mediaSeconds > 0)) return;
    this.encodeSpeed.observe(mediaSeconds / wallSeconds);
    const rate = (pixelsPerMediaSecond * mediaSeconds) / wallSeconds;
    const before = this.pixelRates.get(preset);
    this.pixelRates.set(preset, before === undefined ? rate : 0.7 * before + 0.3 * rate);
  }

  /** The basis of the work estimates of dry runs; undefined until a task was encoded here with `preset`. */
  pixelRate(preset: string): number | undefined {
    return this.pixelRates.get(preset);
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
