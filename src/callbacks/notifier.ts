import { createHmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { Logger } from 'pino';
import type { CallbackState, TaskRecord } from '../queue/task.js';
import type { TaskQueue } from '../queue/task-queue.js';
import { assertCallbackUrl, guardedLookup } from './address-guard.js';
import { waitAtMost } from '../wait-at-most.js';

export interface NotifierOptions {
  defaultUrl?: string;
  secret?: string;
  maxAttempts: number;
  backoffMs: number;
  timeoutMs: number;
  allowPrivate: boolean;
  logger: Logger;
  /** Builds the JSON document POSTed (the task's status document). */
  render: (task: TaskRecord) => unknown;
  /** Told the final outcome of each delivery (for metrics). */
  onFinished?: (outcome: 'delivered' | 'failed') => void;
}

/**
 * Sends the final status document of a task to its callback URL, signed, with retries and exponential
 * backoff. Deliveries run in the background: the worker goes on with the next task meanwhile. A delivery is
 * recorded as `pending` before its first attempt and stays so when the process stops before it settles; the
 * next worker to start resumes it (`resumePending`), with the same delivery id so receivers can drop a
 * duplicate.
 */
export class CallbackNotifier {
  private readonly inFlight = new Set<Promise<void>>();
  /** Tasks whose callback this process is sending: a resume never sends one twice at once. */
  private readonly sending = new Set<string>();
  private readonly stop = new AbortController();

  constructor(
    private readonly queue: TaskQueue,
    private readonly options: NotifierOptions,
  ) {}

  notify(task: TaskRecord): void {
    this.start(task, 0);
  }

  /** Sends the callbacks that stopped processes left pending; returns how many it took up. */
  async resumePending(limit = 1000): Promise<number> {
    const tasks = await this.queue.pendingCallbacks(limit);
    for (const task of tasks) this.start(task, task.callback?.attempts ?? 0);
    if (tasks.length) this.options.logger.info({ callbacks: tasks.length }, 'resuming pending callbacks');
    return tasks.length;
  }

  private start(task: TaskRecord, attemptsMade: number): void {
    const url = task.request.callback_url ?? this.options.defaultUrl;
    if (!url || this.stop.signal.aborted || this.sending.has(task.id)) return;
    this.sending.add(task.id);
    const p = this.deliver(task, url, attemptsMade)
      .catch((err: unknown) =>
        this.options.logger.error({ taskId: task.id, err }, 'callback delivery crashed'),
      )
      .finally(() => {
        this.inFlight.delete(p);
        this.sending.delete(task.id);
      });
    this.inFlight.add(p);
  }

  private async deliver(task: TaskRecord, url: string, attemptsMade: number): Promise<void> {
    const log = this.options.logger.child({ taskId: task.id });
    // The same for every attempt, in this process or the next: one task settles once.
    const deliveryId = `${task.id}.${task.status}`;
    const body = JSON.stringify(this.options.render(task));
    const state: CallbackState = { url: redactUrl(url), status: 'pending', attempts: attemptsMade };
    // Recorded before the first attempt: if this process stops now, the next one resumes it.
    await this.queue
      .setCallbackState(task.id, state)
      .catch((err: unknown) => log.warn({ err }, 'could not record the pending callback'));
    // A resumed delivery gets at least one more attempt, however many its earlier process made.
    const last = Math.max(this.options.maxAttempts, attemptsMade + 1);
    for (let attempt = attemptsMade + 1; attempt <= last; attempt++) {
      state.attempts = attempt;
      try {
        await this.post(url, body, deliveryId, task.id);
        state.status = 'delivered';
        state.delivered_at = new Date().toISOString();
        delete state.last_error;
        await this.queue.setCallbackState(task.id, state);
        log.info({ attempt }, 'callback delivered');
        this.options.onFinished?.('delivered');
        return;
      } catch (err) {
        if (this.stop.signal.aborted) {
          // Stopped by this process's shutdown, not refused by the receiver: left pending for the next.
          state.attempts = attempt - 1;
          await this.queue.setCallbackState(task.id, state).catch(() => undefined);
          return;
        }
        state.last_error = (err as Error).message.slice(0, 300);
        log.warn({ attempt, error: state.last_error }, 'callback attempt failed');
        const final = attempt === last || (err as { permanent?: boolean }).permanent;
        if (final) break;
        await this.queue.setCallbackState(task.id, state).catch(() => undefined);
        const delay = Math.min(this.options.backoffMs * 2 ** (attempt - 1), 5 * 60_000);
        // Shut down while waiting: the state says pending, with the attempts made; the next process resumes.
        if (!(await sleep(delay, this.stop.signal))) return;
      }
    }
    state.status = 'failed';
    this.options.onFinished?.('failed');
    await this.queue.setCallbackState(task.id, state).catch(() => undefined);
  }

  private post(rawUrl: string, body: string, deliveryId: string, taskId: string): Promise<void> {
    let url: URL;
    try {
      url = assertCallbackUrl(rawUrl, { allowPrivate: this.options.allowPrivate });
    } catch (err) {
      return Promise.reject(Object.assign(err as Error, { permanent: true }));
    }
    const timestamp = Math.floor(Date.now() / 1000).toString();
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
      'user-agent': 'dash-video-converter',
      'x-dvc-delivery': deliveryId,
      'x-dvc-task-id': taskId,
      'x-dvc-timestamp': timestamp,
    };
    if (this.options.secret) {
      const mac = createHmac('sha256', this.options.secret).update(`${timestamp}.${body}`).digest('hex');
      headers['x-dvc-signature'] = `sha256=${mac}`;
    }
    const client = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = client.request(
        url,
        {
          method: 'POST',
          headers,
          timeout: this.options.timeoutMs,
          lookup: guardedLookup(this.options.allowPrivate),
          signal: this.stop.signal,
        },
        (res) => {
          res.resume();
          const code = res.statusCode ?? 0;
          // Redirects are not followed: a redirect could point anywhere, private addresses included.
          if (code >= 200 && code < 300) resolve();
          else reject(new Error(`receiver answered HTTP ${code}`));
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.options.timeoutMs} ms`)));
      req.on('error', (err) => reject(err));
      req.end(body);
    });
  }

  /** Waits up to `graceMs` for deliveries under way, then abandons the rest. Idempotent. */
  async close(graceMs = 5000): Promise<void> {
    if (this.inFlight.size) await waitAtMost(Promise.allSettled([...this.inFlight]), graceMs);
    this.stop.abort();
    await Promise.allSettled([...this.inFlight]);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * The URL as shown in status documents, task lists and the dashboard: its origin only. Webhook URLs carry
 * their secret in the query (`?token=`) or in the path (Slack's and Discord's `/services/T0/B0/secret`).
 */
export function redactUrl(raw: string): string {
  try {
    const u = new URL(raw);
    const rest = (u.pathname !== '/' ? u.pathname : '') + u.search;
    return `${u.protocol}//${u.host}${rest ? '/…' : '/'}`;
  } catch {
    return 'invalid URL';
  }
}
