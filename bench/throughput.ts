import autocannon from 'autocannon';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { cpuTimes } from './proc.js';
import { startServer, stopServer } from './variants.js';

export interface ThroughputResult {
  connections: number;
  seconds: number;
  requestsPerSecond: number;
  latencyMs: { p50: number; p99: number; max: number };
  total: number;
  non2xx: number;
  errors: number;
  /** CPU seconds of the server process over the measured window, and its peak RSS. */
  serverCpuSeconds: number;
  logLevel: string;
}

/**
 * `POST /encode` against the embedded queue (SQLite) of a `serve --no-worker` process: only the API and the
 * durable insert are measured, no encoding competes for the 2 cores. A short warm-up runs first. Every request
 * makes a new task, so the queued-task limit is lifted for the run.
 */
export async function measureThroughput(
  cliBundle: string,
  tmpRoot: string,
  options: { seconds: number; connections: number; logLevel: string },
): Promise<ThroughputResult> {
  const root = path.join(tmpRoot, `dvc-bench-api-${process.pid}`);
  await rm(root, { recursive: true, force: true });
  const { server, url } = await startServer(
    cliBundle,
    root,
    { MAX_QUEUED_TASKS: '100000000', LOG_LEVEL: options.logLevel },
    ['--no-worker'],
  );
  try {
    const fire = (duration: number) =>
      autocannon({
        url: `${url}/encode`,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ video_filename: 'bench/throughput.mp4' }),
        connections: options.connections,
        duration,
      });
    await fire(2);
    const before = cpuTimes(server.child.pid!);
    const r = await fire(options.seconds);
    const after = cpuTimes(server.child.pid!);
    return {
      connections: options.connections,
      seconds: options.seconds,
      requestsPerSecond: Math.round(r.requests.average),
      latencyMs: { p50: r.latency.p50, p99: r.latency.p99, max: r.latency.max },
      total: r.requests.total,
      non2xx: r.non2xx,
      errors: r.errors,
      serverCpuSeconds: Math.round((after.self - before.self) * 100) / 100,
      logLevel: options.logLevel,
    };
  } finally {
    await stopServer(server);
    await rm(root, { recursive: true, force: true });
  }
}
