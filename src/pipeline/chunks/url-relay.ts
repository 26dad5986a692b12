import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import { TaskFailure } from '../../domain/failures.js';

/** The response headers FFmpeg's http protocol reads to seek in byte ranges. */
const passedHeaders = [
  'content-length',
  'content-range',
  'accept-ranges',
  'content-type',
  'last-modified',
  'etag',
];

/**
 * Runs `use` with a local http URL that stands for `url` (a presigned one) for as long as it runs: FFmpeg reads
 * the input's byte ranges through it, so the signed URL, a credential, never appears on a command line (which
 * every local user can list), in FFmpeg's messages or in the logs. Only GET and HEAD of one random path are
 * answered, on the loopback interface.
 */
export async function withUrlRelay<T>(
  url: string,
  use: (localUrl: string) => Promise<T>,
  logger?: Logger,
): Promise<T> {
  const token = randomBytes(16).toString('hex');
  const upstream = new AbortController();
  // What the store answered when it refused or could not be reached: the run's failure is then the store's.
  let refused: string | undefined;
  // Bytes read from the store, logged when the run ends: what a chunk cost in transfer.
  let bytes = 0;
  const server = createServer((req, res) => {
    const hooks = {
      onRefused: (status: number) => (refused ??= `HTTP ${status}`),
      onBytes: (n: number) => (bytes += n),
    };
    relay(req, res, url, token, upstream.signal, hooks).catch((err: unknown) => {
      // FFmpeg closing a connection to seek elsewhere, or the run ending: nothing went wrong.
      if (req.destroyed || upstream.signal.aborted) return;
      // The upstream's error can carry the URL: only its kind is logged.
      logger?.warn({ err: err instanceof Error ? err.name : 'error' }, 'input relay: a request failed');
      refused ??= 'unreachable';
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  try {
    return await use(`http://127.0.0.1:${port}/${token}`);
  } catch (err) {
    // An expired signature or a store that is down: another attempt, with a new URL, may read it.
    if (refused && !(err instanceof TaskFailure && err.code === 'cancelled')) {
      throw new TaskFailure('storage_error', `the input could not be read from the storage (${refused})`, {
        cause: err,
      });
    }
    throw err;
  } finally {
    upstream.abort();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    logger?.debug({ bytes }, 'input relay: closed');
  }
}

async function relay(
  req: IncomingMessage,
  res: ServerResponse,
  url: string,
  token: string,
  signal: AbortSignal,
  hooks: { onRefused: (status: number) => void; onBytes: (n: number) => void },
): Promise<void> {
  if (req.url !== `/${token}` || (req.method !== 'GET' && req.method !== 'HEAD')) {
    res.writeHead(404).end();
    return;
  }
  const range = req.headers.range;
  const answer = await fetch(url, {
    method: req.method,
    headers: range ? { range } : {},
    signal,
  });
  const headers: Record<string, string> = {};
  for (const name of passedHeaders) {
    const value = answer.headers.get(name);
    if (value !== null) headers[name] = value;
  }
  // 416: FFmpeg asked past the end, which it does to find the end; not a refusal.
  if (answer.status >= 400 && answer.status !== 416) hooks.onRefused(answer.status);
  res.writeHead(answer.status, headers);
  if (!answer.body || req.method === 'HEAD') {
    res.end();
    return;
  }
  const body = Readable.fromWeb(answer.body as import('node:stream/web').ReadableStream);
  body.on('data', (chunk: Buffer) => hooks.onBytes(chunk.length));
  await pipeline(body, res);
}
