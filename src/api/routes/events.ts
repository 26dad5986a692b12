import type { ServerResponse } from 'node:http';
import type { FastifyBaseLogger, FastifyPluginAsync } from 'fastify';
import type { Services } from '../../app/services.js';
import type { TaskStore } from '../../queue/task-queue.js';
import type { TaskRecord } from '../../domain/task.js';
import { ErrorBodySchema } from '../../domain/schemas/error-body.js';
import type { StatusDocument } from '../../domain/schemas/status-document.js';
import { toStatusDocument } from '../status-document.js';

export interface EventRouteOptions {
  services: Services;
  /** How often the shared ticker reads the queue while someone listens. */
  intervalMs?: number;
  /** How many of the newest tasks are watched and listed. */
  limit?: number;
  heartbeatMs?: number;
}

/** A client whose buffered but unsent data grows past this is too slow to follow and is dropped. */
const MAX_BUFFERED_BYTES = 1024 * 1024;

/**
 * `GET /events`, Server-Sent Events for the dashboard: a `snapshot` of the newest tasks, then `update`s. One
 * ticker reads the queue for all listeners, only while there is one.
 */
export const eventRoutes: FastifyPluginAsync<EventRouteOptions> = async (app, options) => {
  const limit = options.limit ?? 50;
  const streams = options.services.metrics.eventStreams;
  const feed = new TaskFeed(options.services.queue, {
    intervalMs: options.intervalMs ?? 1000,
    heartbeatMs: options.heartbeatMs ?? 15_000,
    limit,
    logger: app.log,
    // A hijacked reply never reaches the HTTP histogram: the open streams are counted instead.
    onListeners: (n) => streams.set(n),
  });
  // Before the server closes, or its close would wait for these never-ending responses.
  app.addHook('preClose', async () => feed.close());

  app.get(
    '/events',
    {
      // A stream has no head to give: Fastify's automatic HEAD route subscribed the request and never answered.
      exposeHeadRoute: false,
      schema: {
        tags: ['tasks'],
        summary: 'Live task updates (Server-Sent Events)',
        description:
          `A text/event-stream for dashboards: on connect a \`snapshot\` event whose data is ` +
          `{"tasks": [status documents]} of the ${limit} newest tasks, then an \`update\` event with the ` +
          'tasks that changed (among them those shown before that newer ones pushed out, until they end), ' +
          'checked every second, and a comment line every 15 s to keep proxies from ' +
          'closing the stream. With an API key, send it in the X-API-Key header (read the stream with ' +
          'fetch; EventSource cannot send headers). Clients that cannot keep a stream poll GET /tasks.',
        response: {
          200: {
            description: 'The event stream; it stays open until the client or the service closes it.',
            content: { 'text/event-stream': { schema: { type: 'string' } } },
          },
          '4xx': ErrorBodySchema,
        },
      },
    },
    async (req, reply) => {
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        // Proxies such as nginx would otherwise buffer the stream.
        'x-accel-buffering': 'no',
      });
      res.write('retry: 3000\n\n');
      await feed.subscribe(res, req.log);
    },
  );
};

/** Whether a status document (as the feed keeps it, serialised) is of a task that has ended. */
function isFinal(signature: string): boolean {
  const { status } = JSON.parse(signature) as { status: string };
  return status === 'completed' || status === 'failed';
}

class TaskFeed {
  private readonly clients = new Set<ServerResponse>();
  private last = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private ticking = false;
  private closed = false;

  constructor(
    private readonly queue: TaskStore,
    private readonly options: {
      intervalMs: number;
      heartbeatMs: number;
      limit: number;
      logger: FastifyBaseLogger;
      onListeners: (count: number) => void;
    },
  ) {}

  async subscribe(res: ServerResponse, log: FastifyBaseLogger): Promise<void> {
    if (this.closed) {
      res.end();
      return;
    }
    res.on('close', () => this.unsubscribe(res));
    res.on('error', (err) => {
      log.debug({ err }, 'event stream error');
      this.unsubscribe(res);
    });
    try {
      const docs = await this.read();
      send(res, 'snapshot', { tasks: docs });
      // The first listener's snapshot is what the ticker compares its first reading against.
      if (!this.timer) this.last = new Map(docs.map((d) => [d.task_id, JSON.stringify(d)]));
    } catch (err) {
      log.warn({ err }, 'could not read tasks for the event stream');
      res.end();
      return;
    }
    if (res.destroyed || this.closed) return;
    this.clients.add(res);
    this.options.onListeners(this.clients.size);
    this.start();
  }

  private unsubscribe(res: ServerResponse): void {
    this.clients.delete(res);
    this.options.onListeners(this.clients.size);
    if (this.clients.size === 0) this.stop();
  }

  private start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.options.intervalMs);
    this.heartbeat = setInterval(() => this.broadcast(': ping\n\n'), this.options.heartbeatMs);
  }

  private stop(): void {
    clearInterval(this.timer);
    clearInterval(this.heartbeat);
    this.timer = undefined;
    this.heartbeat = undefined;
  }

  /** The newest tasks as GET /tasks shows them, queue positions included. */
  private async read(): Promise<StatusDocument[]> {
    const { tasks } = await this.queue.list({ limit: this.options.limit });
    return Promise.all(tasks.map((task) => this.render(task)));
  }

  private async render(task: TaskRecord): Promise<StatusDocument> {
    const doc = toStatusDocument(task);
    if (task.status === 'queued') doc.queue_position = (await this.queue.position?.(task.id)) ?? null;
    return doc;
  }

  private async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      const docs = [...(await this.read())];
      // A task the clients show that newer ones pushed out of the newest N before it ended (the first of a
      // big batch, still encoding): followed by id until it ends, or its row would stay as it was for good.
      const inWindow = new Set(docs.map((d) => d.task_id));
      const followed = [...this.last]
        .filter(([id, signature]) => !inWindow.has(id) && !isFinal(signature))
        .slice(0, this.options.limit)
        .map(([id]) => id);
      for (const task of await Promise.all(followed.map((id) => this.queue.get(id)))) {
        if (task) docs.push(await this.render(task));
      }
      if (this.closed) return;
      const next = new Map<string, string>();
      const changed: StatusDocument[] = [];
      for (const doc of docs) {
        const signature = JSON.stringify(doc);
        next.set(doc.task_id, signature);
        if (this.last.get(doc.task_id) !== signature) changed.push(doc);
      }
      this.last = next;
      if (changed.length) this.broadcast(frame('update', { tasks: changed }));
    } catch (err) {
      this.options.logger.warn({ err }, 'could not read tasks for the event stream');
    } finally {
      this.ticking = false;
    }
  }

  private broadcast(data: string): void {
    for (const res of this.clients) {
      if (res.writableLength > MAX_BUFFERED_BYTES) {
        res.destroy();
        continue;
      }
      res.write(data);
    }
  }

  close(): void {
    this.closed = true;
    this.stop();
    for (const res of this.clients) res.end();
    this.clients.clear();
  }
}

function frame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

function send(res: ServerResponse, event: string, data: unknown): void {
  res.write(frame(event, data));
}
