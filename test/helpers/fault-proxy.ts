import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ProxiedRequest {
  method: string;
  /** Path and query, as sent. */
  url: string;
  /** The Range header, when the request has one. */
  range?: string;
  /** The If-Match header (the version a read is pinned to), when the request has one. */
  ifMatch?: string;
}

export interface FaultProxyOptions {
  /** Where requests go when no fault is injected, e.g. http://127.0.0.1:4568. */
  target: string;
  /**
   * Each distinct request (method + URL) that matches answers 503 to its first `times` attempts, with the
   * S3 error code `code` (ServiceUnavailable by default; SlowDown makes the SDK back off longer).
   */
  unavailable?: { match: (req: ProxiedRequest) => boolean; times: number; code?: string };
  /** Matching GET responses are cut (socket destroyed) after `afterBytes` body bytes, `times` times in all. */
  cutBody?: { match: (req: ProxiedRequest) => boolean; afterBytes: number; times: number };
  /** Matching requests are held for `ms` before they go on, as a slow store. */
  delay?: { match: (req: ProxiedRequest) => boolean; ms: number };
}

export interface FaultProxy {
  url: string;
  stats: { requests: number; unavailable: number; cut: number };
  /** Every request that reached the proxy, in order. */
  seen: ProxiedRequest[];
  close(): Promise<void>;
}

/**
 * A small HTTP proxy in front of a test server that injects the faults real object stores show: 503s
 * (throttling, brief outages) and connections that drop in the middle of a body.
 */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const target = new URL(options.target);
  const stats = { requests: 0, unavailable: 0, cut: 0 };
  const seen: ProxiedRequest[] = [];
  const attempts = new Map<string, number>();
  let cutsLeft = options.cutBody?.times ?? 0;
  const agent = new http.Agent({ keepAlive: true });

  const server = http.createServer((req, res) => {
    stats.requests++;
    const info: ProxiedRequest = {
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      ...(req.headers.range ? { range: req.headers.range } : {}),
      ...(req.headers['if-match'] ? { ifMatch: req.headers['if-match'] } : {}),
    };
    seen.push(info);
    const id = `${info.method} ${info.url}`;
    const attempt = (attempts.get(id) ?? 0) + 1;
    attempts.set(id, attempt);

    if (options.unavailable?.match(info) && attempt <= options.unavailable.times) {
      stats.unavailable++;
      // Read the body first, as a real server would, so the client sees a clean answer, not a reset.
      req.resume();
      req.once('end', () => {
        const code = options.unavailable?.code ?? 'ServiceUnavailable';
        const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>injected by the test proxy</Message></Error>`;
        res.writeHead(503, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
        res.end(req.method === 'HEAD' ? undefined : body);
      });
      return;
    }

    const cut = info.method === 'GET' && cutsLeft > 0 && options.cutBody?.match(info);
    if (cut) cutsLeft--;
    const forward = () => {
      const upstream = http.request(
        {
          host: target.hostname,
          port: target.port,
          method: req.method,
          path: req.url,
          headers: req.headers,
          agent,
        },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          if (!cut) {
            up.pipe(res);
            return;
          }
          let sent = 0;
          const limit = options.cutBody!.afterBytes;
          up.on('data', (chunk: Buffer) => {
            if (sent >= limit) return;
            const part = chunk.subarray(0, limit - sent);
            sent += part.length;
            res.write(part);
            if (sent >= limit) {
              stats.cut++;
              up.destroy();
              res.socket?.destroy();
            }
          });
          up.on('end', () => res.end());
        },
      );
      upstream.on('error', () => res.socket?.destroy());
      req.pipe(upstream);
    };
    if (options.delay?.match(info)) setTimeout(forward, options.delay.ms);
    else forward();
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  let closed: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    stats,
    seen,
    close: () =>
      (closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        agent.destroy();
      })),
  };
}
