import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import { TaskFailure } from '../../domain/failures.js';

/**
 * What the relay asks the store for at a time (see relay): a small block first (FFmpeg reads a header and
 * seeks on), each next one twice the last, up to the largest.
 */
const FIRST_BLOCK_BYTES = 256 * 1024;
const LARGEST_BLOCK_BYTES = 8 * 1024 * 1024;

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
  // FFmpeg asks for everything from where it reads on (`bytes=N-`) and drops the connection to seek: the store
  // is asked for a block at a time instead, so a dropped request costs a block, not the buffers' worth.
  const wanted = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? 'bytes=0-');
  const from = wanted ? Number(wanted[1]) : 0;
  const upTo = wanted?.[2] ? Number(wanted[2]) : undefined;
  let blockBytes = FIRST_BLOCK_BYTES;
  const block = (start: number) => {
    const last = Math.min(start + blockBytes - 1, upTo ?? Infinity);
    blockBytes = Math.min(LARGEST_BLOCK_BYTES, blockBytes * 2);
    return fetch(url, { method: req.method, headers: { range: `bytes=${start}-${last}` }, signal });
  };
  const answer = await block(from);
  // 416: FFmpeg asked past the end, which it does to find the end; not a refusal.
  if (answer.status >= 400 && answer.status !== 416) hooks.onRefused(answer.status);
  const total = /\/(\d+)$/.exec(answer.headers.get('content-range') ?? '')?.[1];
  if (answer.status !== 206 || total === undefined || !wanted) {
    // No ranges (or a refusal): passed on as it is.
    res.writeHead(answer.status, passedOn(answer));
    await sendBody(answer, req, res, hooks);
    return;
  }
  const end = Math.min(upTo ?? Infinity, Number(total) - 1);
  res.writeHead(206, {
    ...passedOn(answer),
    'content-range': `bytes ${from}-${end}/${total}`,
    'content-length': String(end - from + 1),
  });
  if (req.method === 'HEAD') return void res.end();
  let next = from;
  let current: Response = answer;
  for (;;) {
    next += await sendBlock(current, res, hooks);
    if (next > end || res.destroyed) break;
    current = await block(next);
    if (current.status !== 206) throw new Error(`the store answered ${current.status} within the input`);
  }
  res.end();
}

/** The headers of the store's answer that FFmpeg reads. */
function passedOn(answer: Response): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name of passedHeaders) {
    const value = answer.headers.get(name);
    if (value !== null) headers[name] = value;
  }
  return headers;
}

async function sendBody(
  answer: Response,
  req: IncomingMessage,
  res: ServerResponse,
  hooks: { onBytes: (n: number) => void },
): Promise<void> {
  if (!answer.body || req.method === 'HEAD') return void res.end();
  const body = Readable.fromWeb(answer.body as import('node:stream/web').ReadableStream);
  body.on('data', (chunk: Buffer) => hooks.onBytes(chunk.length));
  await pipeline(body, res);
}

/** Writes one block's body, waiting while FFmpeg reads; returns its bytes (fewer when FFmpeg went away). */
async function sendBlock(
  answer: Response,
  res: ServerResponse,
  hooks: { onBytes: (n: number) => void },
): Promise<number> {
  let sent = 0;
  if (!answer.body) return 0;
  for await (const chunk of Readable.fromWeb(answer.body as import('node:stream/web').ReadableStream)) {
    const bytes = (chunk as Buffer).length;
    hooks.onBytes(bytes);
    if (res.destroyed) break;
    sent += bytes;
    if (!res.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.on('drain', done);
        res.on('close', done);
      });
    }
  }
  return sent;
}
