import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startRedisServer } from '../test/helpers/redis-server.js';
import { generatedClip } from './inputs.js';
import { cpuTimes } from './proc.js';
import { start, type Spawned } from './spawn.js';
import { startServer, stopServer } from './variants.js';

/** One timed task: wall seconds from POST /encode to completed, and the CPU of every worker process. */
export interface SplitRun {
  variant: 'unsplit-1core' | 'split-2cores';
  wallSeconds: number;
  cpuSeconds: number;
  /** Per chunk job: what and how long (from the workers' logs). */
  steps: { step: string; worker: number; ms: number }[];
  /** The last run's stages (the stitch, for the split task), as the status document reports them. */
  timings: Record<string, number>;
}

export interface SplitBenchResult {
  input: string;
  durationSeconds: number;
  chunkSeconds: number;
  runs: SplitRun[];
  /** Ratios of the medians: unsplit wall / split wall, split CPU / unsplit CPU. */
  speedup: number;
  cpuRatio: number;
}

interface Worker {
  proc: Spawned;
  lines: Record<string, unknown>[];
}

/**
 * Split and stitch against one run: a 1080p input converted by one worker pinned to core 0 (`taskset -c 0`)
 * with `"chunk_seconds": 0`, and by two workers pinned to cores 0 and 1 with the input split. BullMQ on a
 * real redis-server, local storage shared by the workers (one host), the API in a process of its own. The
 * variants alternate, `runs` times each.
 */
export async function benchSplit(
  cliBundle: string,
  tmpRoot: string,
  options: { seconds?: number; chunkSeconds?: number; runs?: number; log?: (m: string) => void } = {},
): Promise<SplitBenchResult> {
  const seconds = options.seconds ?? 120;
  const chunkSeconds = options.chunkSeconds ?? 30;
  const log = options.log ?? ((m: string) => console.error(m));
  const clip = await generatedClip({ width: 1920, height: 1080, seconds, fps: 30 });
  const root = path.join(tmpRoot, 'split');
  await rm(root, { recursive: true, force: true });
  await mkdir(path.join(root, 'input'), { recursive: true });
  await copyFile(clip, path.join(root, 'input', 'in.mp4'));
  const redis = await startRedisServer();
  const env = {
    QUEUE: 'redis',
    REDIS_URL: redis.url,
    QUEUE_PREFIX: 'bench-split',
    WORKER_CONCURRENCY: '1',
    LOG_LEVEL: 'info',
    INPUT_DIR: path.join(root, 'input'),
    OUTPUT_DIR: path.join(root, 'output'),
  };
  const { server: api, url } = await startServer(cliBundle, root, env, ['--no-worker']);
  const runs: SplitRun[] = [];
  try {
    const rounds = options.runs ?? 1;
    for (let round = 0; round < rounds; round++) {
      for (const variant of ['unsplit-1core', 'split-2cores'] as const) {
        const cores = variant === 'unsplit-1core' ? [0] : [0, 1];
        const workers = await Promise.all(
          cores.map((core) =>
            startWorker(cliBundle, { ...env, STATE_DIR: path.join(root, `w${core}`) }, core),
          ),
        );
        try {
          log(`split bench: ${variant} (round ${round + 1})`);
          runs.push(await timeTask(url, workers, variant, variant === 'split-2cores' ? chunkSeconds : 0));
        } finally {
          await Promise.all(workers.map((w) => stopWorker(w.proc)));
        }
      }
    }
  } finally {
    await stopServer(api);
    await redis.stop();
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const of = (v: SplitRun['variant'], k: 'wallSeconds' | 'cpuSeconds') =>
    median(runs.filter((r) => r.variant === v).map((r) => r[k]));
  return {
    input: `generated 1920x1080 ${seconds} s 30 fps`,
    durationSeconds: seconds,
    chunkSeconds,
    runs,
    speedup: of('unsplit-1core', 'wallSeconds') / of('split-2cores', 'wallSeconds'),
    cpuRatio: of('split-2cores', 'cpuSeconds') / of('unsplit-1core', 'cpuSeconds'),
  };
}

async function startWorker(cliBundle: string, env: Record<string, string>, core: number): Promise<Worker> {
  const lines: Record<string, unknown>[] = [];
  let ready: () => void;
  const started = new Promise<void>((r) => (ready = r));
  const proc = start('taskset', ['-c', String(core), process.execPath, cliBundle, 'worker'], {
    env: { ...process.env, ...env },
    onStdoutLine: (text) => {
      try {
        const line = JSON.parse(text) as Record<string, unknown>;
        lines.push(line);
        if (line.msg === 'dash-video-converter started') ready();
      } catch {
        // Not a log line.
      }
    },
  });
  await Promise.race([
    started,
    proc.done.then(() => {
      throw new Error(`the worker exited at start-up:\n${proc.stderrTail()}`);
    }),
  ]);
  return { proc, lines };
}

async function stopWorker(proc: Spawned): Promise<void> {
  proc.child.kill('SIGTERM');
  await proc.done.catch(() => undefined);
}

async function timeTask(
  url: string,
  workers: Worker[],
  variant: SplitRun['variant'],
  chunkSeconds: number,
): Promise<SplitRun> {
  const before = workers.map((w) => cpuTimes(w.proc.child.pid!));
  const t0 = performance.now();
  const res = await fetch(`${url}/encode`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ video_filename: 'in.mp4', chunk_seconds: chunkSeconds, output_prefix: variant }),
  });
  const { task_id: id } = (await res.json()) as { task_id: string };
  for (;;) {
    const doc = (await (await fetch(`${url}/status/${id}`)).json()) as {
      status: string;
      error?: string;
      timings?: Record<string, number>;
    };
    if (doc.status === 'failed') {
      const warnings = workers.flatMap((w) => w.lines.filter((l) => Number(l.level) >= 40));
      throw new Error(
        `${variant}: the task failed: ${doc.error}\n${JSON.stringify(warnings).slice(0, 3000)}`,
      );
    }
    if (doc.status === 'completed') {
      const wallSeconds = (performance.now() - t0) / 1000;
      // A worker's own CPU and its reaped programs' (FFmpeg, packager): every program of the task has exited.
      const cpuSeconds = workers.reduce((sum, w, i) => {
        const now = cpuTimes(w.proc.child.pid!);
        return sum + now.self + now.children - before[i]!.self - before[i]!.children;
      }, 0);
      const steps = workers.flatMap((w, worker) =>
        w.lines
          .filter((l) => l.taskId === id && l.msg === 'step completed')
          .map((l) => ({ step: String(l.step), worker, ms: Number(l.ms) })),
      );
      return { variant, wallSeconds, cpuSeconds, steps, timings: doc.timings ?? {} };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The split bench's table, for the console and BENCHMARKS.md. */
export function splitReport(r: SplitBenchResult): string {
  const rows = r.runs.map(
    (run) =>
      `| ${run.variant} | ${run.wallSeconds.toFixed(1)} | ${run.cpuSeconds.toFixed(1)} | ${
        run.steps.length
          ? run.steps.map((s) => `${s.step}@w${s.worker} ${(s.ms / 1000).toFixed(1)}`).join(', ')
          : '—'
      } | ${Object.entries(run.timings)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')} |`,
  );
  return [
    `Input: ${r.input}; split: chunk_seconds ${r.chunkSeconds}.`,
    '',
    '| variant | wall s | CPU s | chunk jobs (s) | last run stages (s) |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
    '',
    `Split on 2 cores vs unsplit on 1: **${r.speedup.toFixed(2)}× faster**, **${r.cpuRatio.toFixed(2)}× the CPU**.`,
  ].join('\n');
}

/** `npx tsx bench/split.ts [--seconds 120] [--chunk 30] [--runs 1]`: the split bench alone. */
async function main(): Promise<void> {
  const { parseArgs } = await import('node:util');
  const { values } = parseArgs({
    options: { seconds: { type: 'string' }, chunk: { type: 'string' }, runs: { type: 'string' } },
  });
  const { buildCli } = await import('./build.js');
  const { mkdtemp } = await import('node:fs/promises');
  const os = await import('node:os');
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'dvc-bench-split-'));
  try {
    const result = await benchSplit(await buildCli(), tmp, {
      seconds: values.seconds ? Number(values.seconds) : undefined,
      chunkSeconds: values.chunk ? Number(values.chunk) : undefined,
      runs: values.runs ? Number(values.runs) : undefined,
    });
    const out = path.resolve(import.meta.dirname, 'results');
    await mkdir(out, { recursive: true });
    await writeFile(path.join(out, 'split-latest.json'), JSON.stringify(result, null, 2));
    console.log(splitReport(result));
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
