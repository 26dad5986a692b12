import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startRedisServer } from '../test/helpers/redis-server.js';
import { generatedClip, type GeneratedSpec } from './inputs.js';
import { cpuTimes, machineBusySeconds } from './proc.js';
import { start, type Spawned } from './spawn.js';
import { startServer, stopServer } from './variants.js';

/** One timed task: wall seconds from POST /encode to completed, and the CPU of every worker process. */
export interface SplitRun {
  variant: string;
  wallSeconds: number;
  cpuSeconds: number;
  /** Of `cpuSeconds`, the workers' Node processes' own. */
  nodeCpuSeconds: number;
  /** CPU the rest of the machine took meanwhile: the API, redis, this bench, other users' programs. */
  otherCpuSeconds: number;
  /** Per chunk job: what and how long (from the workers' logs). */
  steps: { step: string; worker: number; ms: number }[];
  /** The last run's stages (the stitch, for the split task), as the status document reports them. */
  timings: Record<string, number>;
}

/**
 * `film`: the issue's benchmark, a 120 s 1080p input on one worker pinned to core 0 unsplit against two workers
 * (cores 0 and 1) split. `done-when`: the issue's Done-when, a 48 s 720p phone-like input (a keyframe every
 * second) submitted to the same two pinned workers with `chunk_seconds` 12 and 0.
 */
export type SplitScenario = 'film' | 'done-when';

interface Variant {
  name: string;
  chunkSeconds: number;
}

interface ScenarioSpec {
  width: number;
  height: number;
  seconds: number;
  keyint?: number;
  kind?: GeneratedSpec['kind'];
  baseline: Variant;
  split: Variant;
  /** The cores of the workers each variant runs on; undefined: the two workers of the scenario serve both. */
  baselineCores?: number[];
}

function scenarioSpec(scenario: SplitScenario, o: { seconds?: number; chunkSeconds?: number }): ScenarioSpec {
  if (scenario === 'done-when') {
    const chunk = o.chunkSeconds ?? 12;
    return {
      width: 1280,
      height: 720,
      seconds: o.seconds ?? 48,
      // A phone camera's: the iPhone clip in shared/media has a keyframe every 1.0 s.
      keyint: 30,
      baseline: { name: 'unsplit-2workers', chunkSeconds: 0 },
      split: { name: `split${chunk}-2workers`, chunkSeconds: chunk },
    };
  }
  return {
    width: 1920,
    height: 1080,
    seconds: o.seconds ?? 120,
    kind: 'testsrc-grain',
    baseline: { name: 'unsplit-1core', chunkSeconds: 0 },
    // CHUNK_SECONDS's default: two chunks for two workers.
    split: { name: 'split-2cores', chunkSeconds: o.chunkSeconds ?? 60 },
    baselineCores: [0],
  };
}

export interface SplitBenchResult {
  scenario: SplitScenario;
  input: string;
  durationSeconds: number;
  chunkSeconds: number;
  runs: SplitRun[];
  /** Ratios of the medians: baseline wall / split wall, split CPU / baseline CPU. */
  speedup: number;
  cpuRatio: number;
  /** `uptime` before and after the runs: the machine is shared. */
  load: { before: string; after: string };
}

interface Worker {
  proc: Spawned;
  lines: Record<string, unknown>[];
}

/**
 * Split and stitch against one run (see SplitScenario): BullMQ on a real redis-server, local storage shared by
 * the workers (one host), the API in a process of its own, each worker pinned to its core with `taskset`. The
 * variants alternate, `runs` times each.
 */
export async function benchSplit(
  cliBundle: string,
  tmpRoot: string,
  options: {
    scenario?: SplitScenario;
    seconds?: number;
    chunkSeconds?: number;
    runs?: number;
    log?: (m: string) => void;
  } = {},
): Promise<SplitBenchResult> {
  const scenario = options.scenario ?? 'film';
  const spec = scenarioSpec(scenario, options);
  const log = options.log ?? ((m: string) => console.error(m));
  const clip = await generatedClip({
    width: spec.width,
    height: spec.height,
    seconds: spec.seconds,
    fps: 30,
    ...(spec.keyint ? { keyint: spec.keyint } : {}),
    ...(spec.kind ? { kind: spec.kind } : {}),
  });
  const root = path.join(tmpRoot, `split-${scenario}`);
  await rm(root, { recursive: true, force: true });
  await mkdir(path.join(root, 'input'), { recursive: true });
  await copyFile(clip, path.join(root, 'input', 'in.mp4'));
  const redis = await startRedisServer();
  const env = {
    QUEUE: 'redis',
    REDIS_URL: redis.url,
    QUEUE_PREFIX: `bench-split-${scenario}`,
    WORKER_CONCURRENCY: '1',
    LOG_LEVEL: 'info',
    INPUT_DIR: path.join(root, 'input'),
    OUTPUT_DIR: path.join(root, 'output'),
  };
  const load = { before: await uptime(), after: '' };
  const { server: api, url } = await startServer(cliBundle, root, env, ['--no-worker']);
  const runs: SplitRun[] = [];
  const startWorkers = (cores: number[]) =>
    Promise.all(
      cores.map((core) => startWorker(cliBundle, { ...env, STATE_DIR: path.join(root, `w${core}`) }, core)),
    );
  const stopWorkers = (workers: Worker[]) => Promise.all(workers.map((w) => stopWorker(w.proc)));
  // done-when: the same two workers take both tasks.
  const shared = spec.baselineCores ? undefined : await startWorkers([0, 1]);
  try {
    const rounds = options.runs ?? 1;
    for (let round = 0; round < rounds; round++) {
      for (const [variant, cores] of [
        [spec.baseline, spec.baselineCores ?? [0, 1]],
        [spec.split, [0, 1]],
      ] as const) {
        const workers = shared ?? (await startWorkers([...cores]));
        try {
          log(`split bench (${scenario}): ${variant.name} (round ${round + 1})`);
          runs.push(await timeTask(url, workers, variant.name, variant.chunkSeconds));
        } finally {
          if (!shared) await stopWorkers(workers);
        }
      }
    }
  } finally {
    if (shared) await stopWorkers(shared);
    await stopServer(api);
    await redis.stop();
  }
  load.after = await uptime();
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const of = (v: Variant, k: 'wallSeconds' | 'cpuSeconds') =>
    median(runs.filter((r) => r.variant === v.name).map((r) => r[k]));
  return {
    scenario,
    input: `generated ${spec.kind ?? 'mandelbrot'} ${spec.width}x${spec.height} ${spec.seconds} s 30 fps, keyframes every ${
      spec.keyint ? `${spec.keyint} frames` : '250 frames (x264 default)'
    }`,
    durationSeconds: spec.seconds,
    chunkSeconds: spec.split.chunkSeconds,
    runs,
    speedup: of(spec.baseline, 'wallSeconds') / of(spec.split, 'wallSeconds'),
    cpuRatio: of(spec.split, 'cpuSeconds') / of(spec.baseline, 'cpuSeconds'),
    load,
  };
}

/** The machine's load average line, as `uptime` prints it. */
async function uptime(): Promise<string> {
  const { runProcess } = await import('../src/process/run-process.js');
  return (await runProcess('uptime', [])).stdout.trim();
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
  variant: string,
  chunkSeconds: number,
): Promise<SplitRun> {
  const before = workers.map((w) => cpuTimes(w.proc.child.pid!));
  const machineBefore = machineBusySeconds();
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
      // The workers' Node processes alone (queue, storage, logs), without their programs.
      const nodeCpuSeconds = workers.reduce(
        (sum, w, i) => sum + cpuTimes(w.proc.child.pid!).self - before[i]!.self,
        0,
      );
      const otherCpuSeconds = machineBusySeconds() - machineBefore - cpuSeconds;
      const steps = workers.flatMap((w, worker) =>
        w.lines
          .filter((l) => l.taskId === id && l.msg === 'step completed')
          .map((l) => ({ step: String(l.step), worker, ms: Number(l.ms) })),
      );
      return {
        variant,
        wallSeconds,
        cpuSeconds,
        nodeCpuSeconds,
        otherCpuSeconds,
        steps,
        timings: doc.timings ?? {},
      };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The split bench's table, for the console and BENCHMARKS.md. */
export function splitReport(r: SplitBenchResult): string {
  const rows = r.runs.map(
    (run) =>
      `| ${run.variant} | ${run.wallSeconds.toFixed(1)} | ${run.cpuSeconds.toFixed(1)} (${run.nodeCpuSeconds.toFixed(1)}) | ${run.otherCpuSeconds.toFixed(1)} | ${
        run.steps.length
          ? run.steps.map((s) => `${s.step}@w${s.worker} ${(s.ms / 1000).toFixed(1)}`).join(', ')
          : '—'
      } | ${Object.entries(run.timings)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')} |`,
  );
  return [
    `Scenario ${r.scenario}. Input: ${r.input}; split: chunk_seconds ${r.chunkSeconds}.`,
    `Load: before \`${r.load.before}\`; after \`${r.load.after}\`.`,
    '',
    "| variant | wall s | CPU s (workers' Node) | others' CPU s | chunk jobs (s) | last run stages (s) |",
    '| --- | --- | --- | --- | --- | --- |',
    ...rows,
    '',
    `Split vs unsplit: **${r.speedup.toFixed(2)}× faster**, **${r.cpuRatio.toFixed(2)}× the CPU**.`,
  ].join('\n');
}

/**
 * `npx tsx bench/split.ts [--scenario done-when|film|both] [--seconds N] [--chunk N] [--runs 1]`: the split
 * bench alone (film by default).
 */
async function main(): Promise<void> {
  const { parseArgs } = await import('node:util');
  const { values } = parseArgs({
    options: {
      scenario: { type: 'string' },
      seconds: { type: 'string' },
      chunk: { type: 'string' },
      runs: { type: 'string' },
    },
  });
  const scenario = values.scenario ?? 'film';
  if (!['film', 'done-when', 'both'].includes(scenario))
    throw new Error(`--scenario: film, done-when or both, not ${scenario}`);
  const scenarios: SplitScenario[] =
    scenario === 'both' ? ['done-when', 'film'] : [scenario as SplitScenario];
  const { buildCli } = await import('./build.js');
  const { mkdtemp } = await import('node:fs/promises');
  const os = await import('node:os');
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'dvc-bench-split-'));
  try {
    const cli = await buildCli();
    for (const s of scenarios) {
      const result = await benchSplit(cli, tmp, {
        scenario: s,
        seconds: values.seconds ? Number(values.seconds) : undefined,
        chunkSeconds: values.chunk ? Number(values.chunk) : undefined,
        runs: values.runs ? Number(values.runs) : undefined,
      });
      const out = path.resolve(import.meta.dirname, 'results');
      await mkdir(out, { recursive: true });
      await writeFile(path.join(out, `split-${s}-latest.json`), JSON.stringify(result, null, 2));
      console.log(splitReport(result));
    }
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
