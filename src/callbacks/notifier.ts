import { createHmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { Logger } from 'pino';
import type { CallbackState, TaskRecord } from '../domain/task.js';
import type { CallbackOutbox } from '../queue/task-queue.js';
import { assertCallbackUrl, guardedLookup } from './address-guard.js';
import { waitAtMost } from '../process/wait-at-most.js';

/** How long past its due time a pending delivery must be before another process takes it up. */
const STALE_AFTER_MS = 2 * 60_000;
/** How often a worker looks for deliveries abandoned by processes that are gone. */
const RESUME_SCAN_MS = 60_000;

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
 * Sends a task's final status document to its callback URL, signed, retried in the background; a delivery
 * whose process stopped is resumed by another worker (docs/design-notes.md, "Callbacks").
 */
export class CallbackNotifier {
  private readonly inFlight = new Set<Promise<void>>();
  /** Tasks whose callback this process is sending: a resume never sends one twice at once. */
  private readonly sending = new Set<string>();
  private readonly stop = new AbortController();
  private resumeTimer: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;

  constructor(
    private readonly outbox: CallbackOutbox,
    private readonly options: NotifierOptions,
  ) {}

  notify(task: TaskRecord): void {
    const url = this.urlFor(task);
    if (!url) return;
    const state: CallbackState = { url: redactUrl(url), status: 'pending', attempts: 0 };
    this.start(task, url, state, undefined);
  }

  /**
   * Sends the callbacks that processes now gone left pending (their next attempt is long overdue): each is
   * claimed first, so of several processes looking at once one sends it. Returns how many it took up.
   */
  async resumePending(limit = 1000): Promise<number> {
    let taken = 0;
    for (const task of await this.outbox.pendingCallbacks(limit)) {
      if (this.stop.signal.aborted) break;
      const current = task.callback;
      if (!current || this.sending.has(task.id)) continue;
      // A state from before next_attempt_at existed: its sender may retry for up to half an hour.
      const due = current.nextAttemptAt
        ? Date.parse(current.nextAttemptAt)
        : Date.parse(task.updatedAt) + 30 * 60_000;
      if (!(Date.now() - due >= STALE_AFTER_MS)) continue;
      const url = this.urlFor(task);
      if (!url) {
        // No URL any more (CALLBACK_URL removed): settled, so it is not looked at again.
        const { nextAttemptAt: _due, ...rest } = current;
        const settled: CallbackState = {
          ...rest,
          status: 'failed',
          lastError: 'no callback URL is configured',
        };
        if (await this.outbox.claimCallback(task.id, current, settled)) this.options.onFinished?.('failed');
        continue;
      }
      const claimed: CallbackState = { ...current, nextAttemptAt: this.attemptDeadline() };
      if (!(await this.outbox.claimCallback(task.id, current, claimed))) continue;
      this.start(task, url, claimed, claimed);
      taken++;
    }
    if (taken) this.options.logger.info({ callbacks: taken }, 'resumed pending callbacks');
    return taken;
  }

  /** Looks for abandoned deliveries now and every minute until close (for workers); never two scans at once. */
  startResuming(): void {
    const scan = () => {
      if (this.scanning || this.stop.signal.aborted) return;
      this.scanning = this.resumePending()
        .then(() => undefined)
        .catch((err: unknown) => this.options.logger.error({ err }, 'could not resume pending callbacks'))
        .finally(() => (this.scanning = undefined));
    };
    scan();
    this.resumeTimer = setInterval(scan, RESUME_SCAN_MS);
    this.resumeTimer.unref();
  }

  private urlFor(task: TaskRecord): string | undefined {
    return task.request.callbackUrl ?? this.options.defaultUrl;
  }

  /** When an attempt starting now will have ended, one way or another. */
  private attemptDeadline(): string {
    return new Date(Date.now() + this.options.timeoutMs).toISOString();
  }

  /** `written`: the state as this process last stored it (a claim), or undefined for a new delivery. */
  private start(
    task: TaskRecord,
    url: string,
    state: CallbackState,
    written: CallbackState | undefined,
  ): void {
    if (this.stop.signal.aborted || this.sending.has(task.id)) return;
    this.sending.add(task.id);
    const p = this.deliver(task, url, state, written)
      .catch((err: unknown) =>
        this.options.logger.error({ taskId: task.id, err }, 'callback delivery crashed'),
      )
      .finally(() => {
        this.inFlight.delete(p);
        this.sending.delete(task.id);
      });
    this.inFlight.add(p);
  }

  private async deliver(
    task: TaskRecord,
    url: string,
    state: CallbackState,
    written: CallbackState | undefined,
  ): Promise<void> {
    const log = this.options.logger.child({ taskId: task.id });
    // The same for every attempt, in this process or another: one task settles once.
    const deliveryId = `${task.id}.${task.status}`;
    const body = JSON.stringify(this.options.render(task));
    let last = written ? { ...written } : undefined;
    // Stores the state if still the one this process wrote last; otherwise another process took the delivery
    // over and this one stops. A failed store is logged and the delivery goes on.
    const save = async (): Promise<boolean> => {
      try {
        const next = { ...state };
        if (last === undefined) await this.outbox.setCallbackState(task.id, next);
        else if (!(await this.outbox.claimCallback(task.id, last, next))) {
          log.warn('another process took this callback over; leaving it to it');
          return false;
        }
        last = next;
      } catch (err) {
        log.warn({ err }, 'could not record the callback state');
      }
      return true;
    };
    // This process stops: the delivery is handed over, due at once for the next worker that looks.
    const handOver = async () => {
      state.nextAttemptAt = new Date(Date.now() - STALE_AFTER_MS).toISOString();
      await save();
    };
    const attemptsMade = state.attempts;
    // A resumed delivery gets at least one more attempt, however many its earlier process made.
    const lastAttempt = Math.max(this.options.maxAttempts, attemptsMade + 1);
    for (let attempt = attemptsMade + 1; attempt <= lastAttempt; attempt++) {
      // Recorded before each attempt: if this process stops, another takes the delivery up once overdue.
      state.nextAttemptAt = this.attemptDeadline();
      if ((last === undefined || attempt > attemptsMade + 1) && !(await save())) return;
      let failure: Error | undefined;
      try {
        await this.post(url, body, deliveryId, task.id);
      } catch (err) {
        failure = err as Error;
      }
      if (!failure) {
        // Apart from the POST: the receiver has it, whatever becomes of this write.
        state.status = 'delivered';
        state.attempts = attempt;
        state.deliveredAt = new Date().toISOString();
        delete state.lastError;
        delete state.nextAttemptAt;
        await save();
        log.info({ attempt }, 'callback delivered');
        this.options.onFinished?.('delivered');
        return;
      }
      // Stopped by this process's shutdown, not refused by the receiver: left pending, for another.
      if (this.stop.signal.aborted) return handOver();
      state.attempts = attempt;
      state.lastError = failure.message.slice(0, 300);
      log.warn({ attempt, error: state.lastError }, 'callback attempt failed');
      if (attempt === lastAttempt || (failure as { permanent?: boolean }).permanent) break;
      const delay = Math.min(this.options.backoffMs * 2 ** (attempt - 1), 5 * 60_000);
      // When the next attempt is due (the status shows it); before it starts, the attempt's own deadline.
      state.nextAttemptAt = new Date(Date.now() + delay).toISOString();
      if (!(await save())) return;
      // Shut down while waiting: handed over to the next worker.
      if (!(await sleep(delay, this.stop.signal))) return handOver();
    }
    state.status = 'failed';
    delete state.nextAttemptAt;
    this.options.onFinished?.('failed');
    await save();
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
          if (code >= 200 && code < 300) resolve();
          else reject(receiverRefusal(code, res.headers.location, url));
        },
      );
      const late = () => req.destroy(new Error(`no answer within ${this.options.timeoutMs} ms`));
      // `timeout` fires on a silent socket only: a receiver trickling its answer a byte at a time held the
      // delivery open for good. The whole answer is due within the timeout too.
      const deadline = setTimeout(late, this.options.timeoutMs);
      req.on('timeout', late);
      req.on('close', () => clearTimeout(deadline));
      req.on('error', (err) => reject(err));
      req.end(body);
    });
  }

  /** Waits up to `graceMs` for deliveries under way, then abandons the rest. Idempotent. */
  async close(graceMs = 5000): Promise<void> {
    clearInterval(this.resumeTimer);
    // A scan under way may be claiming deliveries: it ends before they are waited for.
    await this.scanning;
    if (this.inFlight.size) await waitAtMost(Promise.allSettled([...this.inFlight]), graceMs);
    this.stop.abort();
    await Promise.allSettled([...this.inFlight]);
  }
}

/**
 * Answers another attempt cannot change (301, 308, 410); anything else is retried, as a receiver being
 * deployed or reconfigured answers it for a while.
 */
const finalAnswers = new Set([301, 308, 410]);

/**
 * Why a receiver's answer is not a delivery. Redirects are not followed (one could point anywhere, private
 * addresses included); where it pointed is named by origin only, as the callback URL is.
 */
function receiverRefusal(code: number, location: string | undefined, url: URL): Error {
  let message = `receiver answered HTTP ${code}`;
  if (code >= 300 && code < 400) {
    const target =
      location && URL.canParse(location, url) ? redactUrl(new URL(location, url).href) : undefined;
    message += target ? ` (a redirect to ${target}, not followed)` : ' (a redirect, not followed)';
    if (finalAnswers.has(code)) message += ': set the callback URL to where it moved';
  }
  return Object.assign(new Error(message), finalAnswers.has(code) ? { permanent: true } : {});
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
