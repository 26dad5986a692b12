import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface RedisServer {
  url: string;
  port: number;
  /** Stops the server (SIGTERM, then SIGKILL) and removes its directory; idempotent. */
  stop(): Promise<void>;
  /** Stops the server process and keeps its directory (an outage); `restart` brings it back on the same port. */
  halt(): Promise<void>;
  restart(): Promise<void>;
}

export interface RedisServerOptions {
  /** `aof`: append-only file fsynced every second (what docs/scale-out.md asks of production), kept across `restart`. */
  persistence?: 'none' | 'aof';
}

/**
 * Starts a real `redis-server` (Debian's package) on a free loopback port, in a fresh temporary directory,
 * with persistence off (`--save ''`): each test run gets an empty server of its own.
 */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  let lastError: unknown;
  const aof = options.persistence === 'aof';
  const launch = (port: number, dir: string) =>
    spawn(
      process.env.REDIS_SERVER_PATH ?? 'redis-server',
      [
        ...['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', ''],
        ...(aof ? ['--appendonly', 'yes', '--appendfsync', 'everysec'] : ['--appendonly', 'no']),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
  // The free port is found by binding to port 0 and closing; another process may take it before redis binds.
  for (let attempt = 0; attempt < 5; attempt++) {
    const dir = await mkdtemp(path.join(tmpdir(), 'dvc-redis-'));
    const port = await freePort();
    let child = launch(port, dir);
    try {
      await waitForReady(child);
    } catch (err) {
      lastError = err;
      await stopChild(child);
      await rm(dir, { recursive: true, force: true });
      continue;
    }
    let stopped: Promise<void> | undefined;
    return {
      url: `redis://127.0.0.1:${port}`,
      port,
      halt: () => stopChild(child),
      restart: async () => {
        await stopChild(child);
        child = launch(port, dir);
        await waitForReady(child);
      },
      stop: () =>
        (stopped ??= (async () => {
          await stopChild(child);
          await rm(dir, { recursive: true, force: true });
        })()),
    };
  }
  throw new Error(`redis-server did not start: ${String(lastError)}`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject()));
    });
  });
}

function waitForReady(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => fail(new Error('timed out waiting for redis-server')), 10_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) done();
    };
    const onExit = (code: number | null) =>
      fail(new Error(`redis-server exited (${code}): ${output.slice(-500)}`));
    const cleanup = () => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      child.off('error', fail);
      // Keep draining its output so the pipe never fills.
      child.stdout?.resume();
      child.stderr?.resume();
    };
    function done() {
      cleanup();
      resolve();
    }
    function fail(err: Error) {
      cleanup();
      reject(err);
    }
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.on('exit', onExit);
    child.on('error', fail);
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}
