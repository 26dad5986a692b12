import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { DestinationStream } from 'pino';
import { loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/process/logger.js';
import { startService, type RunningService } from '../../src/app/server.js';

export interface TestService {
  url: string;
  root: string;
  inputDir: string;
  outputDir: string;
  stateDir: string;
  running: RunningService;
  env: Record<string, string>;
  close(): Promise<void>;
}

/**
 * Starts the real service in this process on a free loopback port, with its own input, output and state
 * directories under a fresh temporary root (removed by close unless `keepRoot`).
 */
export async function startTestService(
  env: Record<string, string> = {},
  options: {
    api?: boolean;
    worker?: boolean;
    root?: string;
    keepRoot?: boolean;
    /** Where log lines go (default stdout), e.g. to capture them; LOG_LEVEL in `env` sets the level. */
    logDestination?: DestinationStream;
    /** How often the worker sweeps what dead processes left (the service's default: 10 minutes). */
    sweepIntervalMs?: number;
  } = {},
): Promise<TestService> {
  const root = options.root ?? (await mkdtemp(path.join(tmpdir(), 'dvc-test-')));
  const fullEnv: Record<string, string> = {
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    INPUT_DIR: path.join(root, 'input'),
    OUTPUT_DIR: path.join(root, 'output'),
    STATE_DIR: path.join(root, 'state'),
    X264_PRESET: 'ultrafast',
    ...env,
  };
  const config = loadConfig(fullEnv);
  const logger = createLogger(config.logLevel, options.logDestination);
  const running = await startService(config, logger, {
    api: options.api ?? true,
    worker: options.worker ?? true,
    sweepIntervalMs: options.sweepIntervalMs,
  });
  const url = running.address ?? '';
  return {
    url,
    root,
    inputDir: fullEnv.INPUT_DIR!,
    outputDir: fullEnv.OUTPUT_DIR!,
    stateDir: fullEnv.STATE_DIR!,
    running,
    env: fullEnv,
    close: async () => {
      await running.close();
      if (!options.keepRoot) await rm(root, { recursive: true, force: true });
    },
  };
}

export async function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** GET as JSON; with `timeoutMs`, the request fails when no answer comes within it. */
export async function getJson(url: string, headers: Record<string, string> = {}, timeoutMs?: number) {
  const res = await fetch(url, {
    headers,
    ...(timeoutMs !== undefined ? { signal: AbortSignal.timeout(timeoutMs) } : {}),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

export async function submit(baseUrl: string, videoFilename: string, extra: Record<string, unknown> = {}) {
  const res = await postJson(`${baseUrl}/encode`, { video_filename: videoFilename, ...extra });
  assert.equal(res.status, 202, `POST /encode answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body.task_id as string;
}

export type StatusDoc = {
  task_id: string;
  status: 'queued' | 'processing' | 'completed' | 'failed';
  stage: string | null;
  progress: number;
  error: string | null;
  error_code: string | null;
  cancelled: boolean;
  /** While queued again: when the task is due to run again. */
  next_run_at?: string | null;
  output: {
    prefix: string;
    media_prefix?: string;
    manifest?: { key: string; url?: string };
    hls_master?: { key: string };
    poster: { key: string };
    renditions: { name: string; codec?: string; width: number; height: number; bitrate: number }[];
    audio: boolean;
  } | null;
  callback: { status: string; attempts: number } | null;
};

/** Polls GET /status until the task is completed or failed (or the time runs out); returns every status seen. */
export async function waitForFinal(
  baseUrl: string,
  taskId: string,
  timeoutMs = 120_000,
): Promise<{ doc: StatusDoc; seen: Set<string> }> {
  const seen = new Set<string>();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(`${baseUrl}/status/${taskId}`);
    assert.equal(res.status, 200);
    const doc = (await res.json()) as StatusDoc;
    seen.add(doc.status);
    if (doc.status === 'completed' || doc.status === 'failed') return { doc, seen };
    if (Date.now() > deadline) assert.fail(`task ${taskId} still ${doc.status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
