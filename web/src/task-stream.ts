import { HttpError, type Api } from './api.js';
import type { StatusDocument } from './types.js';

export type StreamMode = 'connecting' | 'live' | 'polling' | 'offline' | 'locked';

export interface StreamHandlers {
  /** The newest tasks as a whole: replaces what the page shows. */
  snapshot(tasks: StatusDocument[]): void;
  /** Tasks that changed. */
  update(tasks: StatusDocument[]): void;
  mode(mode: StreamMode): void;
}

const POLL_MS = 2000;
/** The server sends a comment every 15 s; a stream quiet for longer than this is taken for dead. */
const SILENCE_MS = 40_000;

/**
 * Live task updates: the Server-Sent Events stream at /events, read with fetch so the API key can go in a
 * header (EventSource cannot send one). When the stream cannot be had, the page polls the task list and
 * tries the stream again with growing pauses.
 */
export class TaskStream {
  private stopped = false;
  private abort: AbortController | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly api: Api,
    private readonly handlers: StreamHandlers,
  ) {}

  start(): void {
    this.stopped = false;
    void this.run();
  }

  stop(): void {
    this.stopped = true;
    this.abort?.abort();
    this.wake?.();
  }

  private async run(): Promise<void> {
    let pause = 2000;
    this.handlers.mode('connecting');
    while (!this.stopped) {
      try {
        await this.stream(() => (pause = 2000));
      } catch (err) {
        if (err instanceof HttpError && err.status === 401) {
          this.handlers.mode('locked');
          return;
        }
      }
      if (this.stopped) return;
      const until = Date.now() + pause;
      pause = Math.min(pause * 2, 30_000);
      do {
        try {
          this.handlers.snapshot(await this.poll());
          this.handlers.mode('polling');
        } catch (err) {
          if (err instanceof HttpError && err.status === 401) {
            this.handlers.mode('locked');
            return;
          }
          this.handlers.mode('offline');
        }
        await this.sleep(POLL_MS);
      } while (Date.now() < until && !this.stopped);
    }
  }

  async poll(): Promise<StatusDocument[]> {
    return (await this.api.json<{ tasks: StatusDocument[] }>('GET', '/tasks?limit=50')).tasks;
  }

  private async stream(onOpen: () => void): Promise<void> {
    const abort = new AbortController();
    this.abort = abort;
    let silence = window.setTimeout(() => abort.abort(), SILENCE_MS);
    try {
      const res = await fetch('/events', {
        headers: { ...this.api.headers(), accept: 'text/event-stream' },
        signal: abort.signal,
        cache: 'no-store',
      });
      if (!res.ok || !res.body) throw this.api.error(res.status, await res.json().catch(() => undefined));
      onOpen();
      this.handlers.mode('live');
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        window.clearTimeout(silence);
        silence = window.setTimeout(() => abort.abort(), SILENCE_MS);
        buffer += value;
        const frames = buffer.split(/\r?\n\r?\n/);
        buffer = frames.pop() ?? '';
        for (const frame of frames) this.dispatch(frame);
      }
    } finally {
      window.clearTimeout(silence);
      abort.abort();
    }
  }

  private dispatch(frame: string): void {
    let event = 'message';
    const data: string[] = [];
    for (const line of frame.split(/\r?\n/)) {
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    if (!data.length) return;
    const body = JSON.parse(data.join('\n')) as { tasks: StatusDocument[] };
    if (event === 'snapshot') this.handlers.snapshot(body.tasks);
    else if (event === 'update') this.handlers.update(body.tasks);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = window.setTimeout(resolve, ms);
      this.wake = () => {
        window.clearTimeout(timer);
        resolve();
      };
    });
  }
}
