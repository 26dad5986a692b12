import { copyFile, link, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import path from 'node:path';
import { loadConfig } from '../src/config/config.js';
import { buildEncodeArgs } from '../src/pipeline/ffmpeg-args.js';
import type { MediaInfo } from '../src/pipeline/media-info.js';
import { planEncode, type EncodeSettings, type Rendition } from '../src/pipeline/plan.js';
import { bundledPackagerPath } from '../src/pipeline/tools.js';
import { outputPrefixFor } from '../src/storage/keys.js';
import { Monitor, type PeakMemory } from './monitor.js';
import { childrenOf, cpuTimes } from './proc.js';
import { run, start, type Spawned } from './spawn.js';

/** The seed project's encoder settings, as our environment variables say them. */
export const seedEnv = { X264_PRESET: 'ultrafast', LADDER: '360:600k,720:3000k', SEGMENT_DURATION: '3' };
/** Our defaults except the ladder's bitrates, which are the seed's: quality at equal bitrate. */
export const seedRatesEnv = { LADDER: '360:600k,720:3000k' };

export interface RunContext {
  inputPath: string;
  media: MediaInfo;
  /** A fresh directory for this run's files. */
  runDir: string;
  round: number;
}

export interface RunResult {
  wallMs: number;
  firstManifestMs?: number;
  /** CPU seconds of every process of the run; `node` where it can be told apart. */
  cpu: { total: number; node?: number };
  /** CPU seconds per program as last sampled (a lower bound: processes shorter than a sample are missed). */
  cpuByProgram: Record<string, number>;
  peakRss: PeakMemory;
  /** The package (manifest + rung directories), absent for the limit. */
  packageDir?: string;
  outputBytes: number;
}

export interface Variant {
  name: string;
  description: string;
  /** Settings environment the variant runs with, for the table. */
  env: Record<string, string>;
  start?(): Promise<void>;
  run(ctx: RunContext): Promise<RunResult>;
  close?(): Promise<void>;
}

/** Processes that belong to long-running variants (servers), left out of the other variants' samples. */
const servicePids = new Set<number>();

export function settingsFor(env: Record<string, string>): EncodeSettings {
  return loadConfig({ ...env }).encode;
}

/** Times `fn`, whose processes are children of the bench: CPU from the bench's reaped-children counters. */
async function measureLocal(watchFile: string | undefined, fn: () => Promise<void>) {
  const before = cpuTimes('self');
  const monitor = new Monitor(() => childrenOf('self').filter((p) => !servicePids.has(p)), watchFile);
  const t0 = performance.now();
  let wallMs: number;
  let m: ReturnType<Monitor['stop']>;
  try {
    await fn();
  } finally {
    wallMs = performance.now() - t0;
    m = monitor.stop();
  }
  const after = cpuTimes('self');
  return {
    wallMs,
    firstManifestMs: m.firstFileMs,
    cpu: { total: after.children - before.children, node: m.cpuByProgram.node },
    cpuByProgram: m.cpuByProgram,
    peakRss: m.peak,
  };
}

export async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) total += (await stat(path.join(e.parentPath, e.name))).size;
  }
  return total;
}

const kbit = (bps: number) => `${Math.round(bps / 1000)}k`;

/**
 * The seed's pipeline: one FFmpeg run per rung (each decoding the whole input), CBR at the rung's bitrate,
 * a fixed 72-frame GOP without scene-cut keyframes, AAC audio in every rung file, then one Shaka Packager run
 * with 3 s segments. Rungs taller than the source are skipped, like ours, so both make the same ladder.
 */
export function seedVariant(): Variant {
  const settings = settingsFor(seedEnv);
  const packager = bundledPackagerPath();
  return {
    name: 'seed',
    description: 'seed pipeline: ffmpeg per rung (ultrafast, CBR, keyint 72) + packager, 3 s segments',
    env: seedEnv,
    async run({ inputPath, media, runDir }) {
      const plan = planEncode(media, settings);
      const encDir = path.join(runDir, 'encoded');
      const pkgDir = path.join(runDir, 'package');
      await mkdir(encDir, { recursive: true });
      await mkdir(pkgDir, { recursive: true });
      const fileOf = (r: Rendition) => path.join(encDir, `${r.name}.mp4`);
      const measured = await measureLocal(path.join(pkgDir, 'manifest.mpd'), async () => {
        for (const r of plan.renditions) {
          const rate = kbit(r.bitrate);
          await run('ffmpeg', [
            ...['-hide_banner', '-nostdin', '-v', 'error', '-y', '-i', inputPath],
            ...['-vf', `scale=${r.width}:-2`, '-c:v', 'libx264', '-preset', 'ultrafast'],
            ...['-b:v', rate, '-minrate', rate, '-maxrate', rate, '-bufsize', rate],
            ...['-g', '72', '-sc_threshold', '0'],
            ...(media.audio ? ['-c:a', 'aac', '-b:a', '128k'] : ['-an']),
            fileOf(r),
          ]);
        }
        const descriptors = plan.renditions.map(
          (r) =>
            `in=${fileOf(r)},stream=video,init_segment=${r.name}/init.mp4,segment_template=${r.name}/$Number$.m4s`,
        );
        if (media.audio) {
          const top = plan.renditions[plan.renditions.length - 1]!;
          descriptors.push(
            `in=${fileOf(top)},stream=audio,init_segment=audio/init.mp4,segment_template=audio/$Number$.m4s`,
          );
        }
        await run(
          packager,
          [
            ...descriptors,
            ...['--segment_duration', '3', '--generate_static_live_mpd', '--mpd_output', 'manifest.mpd'],
          ],
          { cwd: pkgDir },
        );
      });
      return { ...measured, packageDir: pkgDir, outputBytes: await dirBytes(pkgDir) };
    },
  };
}

/**
 * The limit: our own FFmpeg arguments for the whole ladder and the audio, every output sent to the null muxer.
 * Decoding, filtering and encoding cost what they cost in our pipeline; nothing is muxed, written or packaged.
 */
export function limitVariant(name: string, env: Record<string, string>): Variant {
  const settings = settingsFor(env);
  return {
    name,
    description: 'one ffmpeg: decode once, encode every rung with our arguments to -f null',
    env,
    async run({ inputPath, media }) {
      const plan = planEncode(media, settings);
      const marker = (n: string) => `/dev/null/${n}`;
      const args = buildEncodeArgs({
        inputPath,
        media,
        plan,
        outputs: {
          video: Object.fromEntries(plan.renditions.map((r) => [r.name, marker(r.name)])),
          audio: Object.fromEntries(plan.audioTracks.map((a) => [a.name, marker(a.name)])),
        },
      });
      const nulled = toNullOutputs(args);
      const measured = await measureLocal(undefined, () => run('ffmpeg', nulled));
      return { ...measured, outputBytes: 0 };
    },
  };
}

/** MP4 muxer options that the null muxer would refuse, with their values. */
const mp4MuxerOptions = new Set(['-movflags', '-frag_duration']);

/** Our FFmpeg arguments with every `file:/dev/null/…` output sent to the null muxer instead of MP4. */
export function toNullOutputs(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (mp4MuxerOptions.has(a)) i++;
    else if (a.startsWith('file:/dev/null/')) out.push('-f', 'null', '-');
    else out.push(a);
  }
  return out;
}

/** Our CLI, `convert INPUT -o DIR`, from the bundle of the current sources. */
export function cliVariant(name: string, cliBundle: string, env: Record<string, string>): Variant {
  return {
    name,
    description: `ours: node cli convert${describeEnv(env)}`,
    env,
    async run({ inputPath, runDir }) {
      const out = path.join(runDir, 'out');
      const measured = await measureLocal(path.join(out, 'manifest.mpd'), () =>
        run(process.execPath, [cliBundle, 'convert', inputPath, '-o', out, '-q'], {
          env: { ...process.env, LOG_LEVEL: 'warn', ...env, TMPDIR: runDir },
        }),
      );
      return { ...measured, packageDir: out, outputBytes: await dirBytes(out) };
    },
  };
}

/**
 * Our server (`serve`, embedded SQLite queue and in-process worker, local storage), started once per input and
 * timed from POST /encode to a completed status. CPU is read from the server process: its own time is Node's,
 * its reaped children's is FFmpeg's and the packager's.
 */
export function serverVariant(
  name: string,
  cliBundle: string,
  env: Record<string, string>,
  requestExtra: Record<string, unknown> = {},
): Variant {
  let server: Spawned | undefined;
  let root = '';
  let url = '';
  return {
    name,
    description: `ours: serve, POST /encode → completed${describeEnv(env)}${Object.keys(requestExtra).length ? ` with ${JSON.stringify(requestExtra)}` : ''}`,
    env,
    async start() {
      root = path.join(process.env.DVC_BENCH_TMP ?? '/tmp', `dvc-bench-${name}-${process.pid}`);
      await rm(root, { recursive: true, force: true });
      ({ server, url } = await startServer(cliBundle, root, env));
    },
    async run({ inputPath, round }) {
      const pid = server!.child.pid!;
      const key = `r${round}_${path.basename(inputPath).replace(/[^\w.-]/g, '_')}`;
      const inputFile = path.join(root, 'input', key);
      await link(inputPath, inputFile).catch(() => copyFile(inputPath, inputFile));
      const pkgDir = path.join(root, 'output', outputPrefixFor(key));
      const before = cpuTimes(pid);
      const monitor = new Monitor(() => [pid], path.join(pkgDir, 'manifest.mpd'));
      const t0 = performance.now();
      let wallMs: number;
      let m: ReturnType<Monitor['stop']>;
      try {
        const res = await fetch(`${url}/encode`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ video_filename: key, ...requestExtra }),
        });
        if (res.status !== 202) throw new Error(`POST /encode answered ${res.status}: ${await res.text()}`);
        const { task_id } = (await res.json()) as { task_id: string };
        for (;;) {
          const doc = (await (await fetch(`${url}/status/${task_id}`)).json()) as {
            status: string;
            progress?: number;
            error?: string;
          };
          if (doc.status === 'completed') break;
          if (doc.status === 'failed') throw new Error(`task failed: ${doc.error}`);
          // Often near the end only: each GET /status costs the server CPU that the encode would otherwise
          // have (≈0.7 ms a request; 25 ms polling throughout took 3 % of a 5 s job), and the end is what is timed.
          await new Promise((r) => setTimeout(r, (doc.progress ?? 0) < 90 ? 250 : 20));
        }
      } finally {
        wallMs = performance.now() - t0;
        m = monitor.stop();
      }
      const after = cpuTimes(pid);
      await rm(inputFile, { force: true });
      return {
        wallMs,
        firstManifestMs: m.firstFileMs,
        cpu: {
          total: after.self + after.children - before.self - before.children,
          node: after.self - before.self,
        },
        cpuByProgram: m.cpuByProgram,
        peakRss: m.peak,
        packageDir: pkgDir,
        outputBytes: await dirBytes(pkgDir),
      };
    },
    async close() {
      if (server) await stopServer(server);
      server = undefined;
      await rm(root, { recursive: true, force: true });
    },
  };
}

/**
 * Spawns `serve` with its own directories under `root` on a free loopback port and waits until it answers
 * HTTP (any log level: nothing is read from its logs).
 */
export async function startServer(
  cliBundle: string,
  root: string,
  env: Record<string, string>,
  args: string[] = [],
): Promise<{ server: Spawned; url: string }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const server = start(process.execPath, [cliBundle, 'serve', ...args], {
    env: {
      ...process.env,
      HOST: '127.0.0.1',
      PORT: String(port),
      INPUT_DIR: path.join(root, 'input'),
      OUTPUT_DIR: path.join(root, 'output'),
      STATE_DIR: path.join(root, 'state'),
      ...env,
    },
  });
  servicePids.add(server.child.pid!);
  let exited = false;
  server.done.catch(() => {}).finally(() => (exited = true));
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (exited) throw new Error(`the server exited at start-up:\n${server.stderrTail()}`);
      if (Date.now() > deadline)
        throw new Error(`the server did not answer within 30 s:\n${server.stderrTail()}`);
      const answered = await fetch(`${url}/healthz`).then(
        () => true,
        () => false,
      );
      if (answered) return { server, url };
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    await stopServer(server);
    throw err;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

export async function stopServer(server: Spawned): Promise<void> {
  server.child.kill('SIGTERM');
  const killer = setTimeout(() => server.child.kill('SIGKILL'), 15_000);
  await server.done.catch(() => {});
  clearTimeout(killer);
  servicePids.delete(server.child.pid!);
}

function describeEnv(env: Record<string, string>): string {
  const entries = Object.entries(env);
  return entries.length ? ` (${entries.map(([k, v]) => `${k}=${v}`).join(' ')})` : ' (defaults)';
}
