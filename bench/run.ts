import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { benchSplit, splitReport } from './split.js';
import { probe } from '../src/pipeline/probe.js';
import { buildCli } from './build.js';
import { resolveInputs, generatedClip } from './inputs.js';
import { machineInfo } from './machine.js';
import { measureQuality } from './quality.js';
import { renderMarkdown, type BenchResults, type InputResult, type RssLongResult } from './report.js';
import { measureThroughput } from './throughput.js';
import {
  cliVariant,
  limitVariant,
  seedEnv,
  seedRatesEnv,
  seedVariant,
  serverVariant,
  type RunResult,
  type Variant,
} from './variants.js';

const usage = `npm run bench -- [options]

  --inputs LIST       comma-separated: generated | generated:WxH:SECONDS | shared | a file in ../shared/media | a path
                      (default: generated,shared; --quick: a 6 s 1080p generated clip)
  --runs N            runs of each variant, alternated A B C A B C (default 3)
  --variants LIST     seed,limit,limit-seedcfg,cli,cli-nothumbs,cli-seedcfg,cli-seedrates,server,server-seedcfg (the
                      default), server-seedprofile (POST /encode with "profile": "seed", the named profile),
                      server-early (EARLY_MANIFEST=true); given, the longer input runs those of them it runs
  --quick             a short clip, fewer variants, a short throughput run, no long-input RSS check
  --no-quality        skip PSNR/SSIM
  --no-throughput     skip the POST /encode measurement
  --no-rss-long       skip the 10 s vs 10 min peak-RSS check of the service
  --early-input SPEC  the longer input (default generated:1920x1080:60), for the first playable manifest (seed,
                      server, server-early with EARLY_MANIFEST=true) and the seed settings there (limit-seedcfg,
                      cli-seedcfg, server-seedcfg), where fixed costs weigh less: --runs each
  --no-early          skip that comparison (--quick skips it too)
  --no-split          skip split and stitch (a 120 s 1080p input: one worker on one core unsplit, two workers on two
                      cores split; --quick skips it too; alone: npx tsx bench/split.ts)
  --out DIR           where results go (default bench/results)`;

const allVariants = [
  'seed',
  'limit',
  'limit-seedcfg',
  'cli',
  'cli-nothumbs',
  'cli-seedcfg',
  'cli-seedrates',
  'server',
  'server-seedcfg',
];
/**
 * On the longer input: the first playable manifest (server, server-early), and the seed settings' ratios where
 * the fixed costs (Node's start-up, the probe, the packager's last manifests) weigh less than on 15 s.
 */
const longInputVariants = [
  'seed',
  'limit-seedcfg',
  'cli-seedcfg',
  'server-seedcfg',
  'server',
  'server-early',
  // What the seek-bar thumbnails cost (the CLI with and without), where a video has more than a few of them.
  'cli',
  'cli-nothumbs',
];
const quickVariants = ['seed', 'limit-seedcfg', 'cli-seedcfg', 'limit', 'cli', 'cli-nothumbs'];
/** The server runs the same pipeline as the CLI: its output's quality is the CLI's. */
const qualityVariants = new Set(['seed', 'cli', 'cli-seedcfg', 'cli-seedrates', 'server-seedprofile']);

function makeVariant(name: string, cli: string): Variant {
  switch (name) {
    case 'seed':
      return seedVariant();
    case 'limit':
      return limitVariant(name, {});
    case 'limit-seedcfg':
      return limitVariant(name, seedEnv);
    case 'cli':
      return cliVariant(name, cli, {});
    case 'cli-nothumbs':
      return cliVariant(name, cli, { THUMBNAILS: 'false' });
    case 'cli-seedcfg':
      return cliVariant(name, cli, seedEnv);
    case 'cli-seedrates':
      return cliVariant(name, cli, seedRatesEnv);
    case 'server':
      return serverVariant(name, cli, {});
    case 'server-seedcfg':
      return serverVariant(name, cli, seedEnv);
    case 'server-early':
      return serverVariant(name, cli, { EARLY_MANIFEST: 'true' });
    case 'server-seedprofile':
      // The named profile: the seed's ladder, preset and segments with near-constant bitrate (maxrate = bufsize).
      return serverVariant(name, cli, {}, { profile: 'seed' });
    default:
      throw new Error(`unknown variant "${name}"; known: ${allVariants.join(', ')}`);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      inputs: { type: 'string' },
      runs: { type: 'string' },
      variants: { type: 'string' },
      quick: { type: 'boolean' },
      'no-quality': { type: 'boolean' },
      'no-throughput': { type: 'boolean' },
      'no-rss-long': { type: 'boolean' },
      'early-input': { type: 'string' },
      'no-early': { type: 'boolean' },
      'no-split': { type: 'boolean' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(usage);
    return;
  }
  const quick = !!values.quick;
  const runs = Number(values.runs ?? 3);
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be a whole number ≥ 1');
  const variantNames = values.variants?.split(',') ?? (quick ? quickVariants : allVariants);
  const root = path.resolve(fileURLToPath(import.meta.url), '../..');
  const outDir = path.resolve(values.out ?? path.join(root, 'bench/results'));
  await mkdir(outDir, { recursive: true });
  const tmpRoot = await mkdtemp(path.join(os.tmpdir(), 'dvc-bench-'));
  process.env.DVC_BENCH_TMP = tmpRoot;

  const startedAt = new Date().toISOString();
  const machine = machineInfo();
  log(`machine: ${machine.cpu}, ${machine.cores} cores, load ${machine.loadAverage}`);
  const cli = await buildCli();
  const inputs = await resolveInputs(
    (values.inputs ?? (quick ? 'generated' : 'generated,shared')).split(','),
    quick,
  );

  const results: BenchResults = {
    startedAt,
    finishedAt: '',
    machine,
    options: { runs, quick, variants: variantNames },
    inputs: [],
    errors: [],
  };
  const live: Variant[] = [];
  const onSignal = () => {
    void Promise.allSettled(live.map((v) => v.close?.())).then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // A part that fails is recorded and the others still run: one broken input must not lose a 15-minute run.
  const attempt = async (what: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (err) {
      log(`${what} failed: ${(err as Error).message}`);
      results.errors.push(`${what}: ${(err as Error).message.split('\n')[0]}`);
    }
  };
  try {
    for (const input of inputs) {
      await attempt(input.label, async () => {
        results.inputs.push(
          await benchInput(input, variantNames, cli, runs, tmpRoot, !values['no-quality'], live),
        );
      });
    }
    if (!quick && !values['no-early']) {
      await attempt('first manifest', async () => {
        const [input] = await resolveInputs([values['early-input'] ?? 'generated:1920x1080:60'], false);
        const asked = values.variants ? longInputVariants.filter((v) => variantNames.includes(v)) : [];
        const names = values.variants ? asked : longInputVariants;
        if (names.length) results.early = await benchInput(input!, names, cli, runs, tmpRoot, false, live);
      });
    }
    if (!values['no-throughput']) {
      log('POST /encode throughput (autocannon)');
      // The default log level (info: three lines per request), then warn, to show what logging costs.
      results.throughput = [];
      for (const logLevel of ['info', 'warn']) {
        await attempt(`throughput at ${logLevel}`, async () => {
          results.throughput!.push(
            await measureThroughput(cli, tmpRoot, { seconds: quick ? 5 : 10, connections: 10, logLevel }),
          );
        });
      }
    }
    if (!quick && !values['no-split']) {
      await attempt('split and stitch', async () => {
        results.split = await benchSplit(cli, tmpRoot, { log });
      });
    }
    if (!quick && !values['no-rss-long']) {
      await attempt('long-input RSS', async () => {
        results.rssLong = await rssLong(cli, tmpRoot, live);
      });
    }
  } finally {
    await Promise.allSettled(live.map((v) => v.close?.()));
    await rm(tmpRoot, { recursive: true, force: true });
  }
  results.finishedAt = new Date().toISOString();
  results.loadAverageEnd = Math.round(os.loadavg()[0]! * 100) / 100;
  const stamp = startedAt.replace(/[:.]/g, '-');
  const markdown =
    renderMarkdown(results) +
    (results.split ? `\n\n## Split and stitch\n\n${splitReport(results.split)}\n` : '');
  await writeFile(path.join(outDir, `bench-${stamp}.json`), JSON.stringify(results, null, 2));
  await writeFile(path.join(outDir, 'latest.json'), JSON.stringify(results, null, 2));
  await writeFile(path.join(outDir, `bench-${stamp}.md`), markdown);
  await writeFile(path.join(outDir, 'latest.md'), markdown);
  console.log(`\n${markdown}`);
  log(`results: ${path.join(outDir, `bench-${stamp}.json`)} and .md`);
}

async function benchInput(
  input: { label: string; path: string },
  variantNames: string[],
  cli: string,
  runs: number,
  tmpRoot: string,
  quality: boolean,
  live: Variant[],
): Promise<InputResult> {
  const media = await probe(input.path, { ffprobe: 'ffprobe' });
  log(`input ${input.label}: ${media.video.width}x${media.video.height}, ${media.duration.toFixed(1)} s`);
  const variants = variantNames.map((n) => makeVariant(n, cli));
  const runsOf = new Map<string, RunResult[]>(variants.map((v) => [v.name, []]));
  const keep = new Map<string, string>();
  const inputDir = await mkdtemp(path.join(tmpRoot, 'input-'));
  try {
    for (const v of variants) {
      await v.start?.();
      live.push(v);
    }
    for (let round = 1; round <= runs; round++) {
      for (const v of variants) {
        const runDir = await mkdtemp(path.join(inputDir, `${v.name}-${round}-`));
        const r = await v.run({ inputPath: input.path, media, runDir, round });
        runsOf.get(v.name)!.push(r);
        log(
          `  ${round}/${runs} ${v.name.padEnd(15)} ${(r.wallMs / 1000).toFixed(2)} s, cpu ${r.cpu.total.toFixed(2)} s`,
        );
        if (round === 1 && r.packageDir) keep.set(v.name, r.packageDir);
        else {
          if (r.packageDir) await rm(r.packageDir, { recursive: true, force: true });
          await rm(runDir, { recursive: true, force: true });
        }
      }
    }
    const out: InputResult = {
      label: input.label,
      path: input.path,
      media: {
        duration: media.duration,
        width: media.video.width,
        height: media.video.height,
        frameRate: Math.round(media.video.frameRate * 100) / 100,
        codec: media.video.codec,
        audio: !!media.audio,
      },
      variants: [],
    };
    for (const v of variants) {
      const pkg = keep.get(v.name);
      let q;
      if (quality && pkg && qualityVariants.has(v.name)) {
        log(`  quality of ${v.name}`);
        q = await measureQuality(input.path, pkg, media.duration);
      }
      out.variants.push({
        name: v.name,
        description: v.description,
        env: v.env,
        runs: runsOf.get(v.name)!.map(({ packageDir: _p, ...rest }) => rest),
        quality: q,
      });
    }
    return out;
  } finally {
    for (const v of variants) {
      await v.close?.();
      live.splice(live.indexOf(v), 1);
    }
    await rm(inputDir, { recursive: true, force: true });
  }
}

/**
 * Peak RSS of the service's Node process for a 10 s and a 10 min input (360p test pattern, one 360p rung at
 * ultrafast so the long one converts in about a minute): the Node side must not grow with the input's length.
 */
async function rssLong(cli: string, tmpRoot: string, live: Variant[]): Promise<RssLongResult[]> {
  const out: RssLongResult[] = [];
  for (const seconds of [10, 600]) {
    const clip = await generatedClip({ width: 640, height: 360, seconds, fps: 30, kind: 'testsrc' });
    const media = await probe(clip, { ffprobe: 'ffprobe' });
    log(`service peak RSS with a ${seconds} s input`);
    const v = serverVariant(`rss-${seconds}s`, cli, { X264_PRESET: 'ultrafast', LADDER: '360:800k' });
    await v.start!();
    live.push(v);
    try {
      const runDir = await mkdtemp(path.join(tmpRoot, 'rss-'));
      const r = await v.run({ inputPath: clip, media, runDir, round: 1 });
      out.push({
        inputSeconds: seconds,
        wallMs: r.wallMs,
        nodePeakRss: r.peakRss.byProgram.node ?? NaN,
        ffmpegPeakRss: r.peakRss.byProgram.ffmpeg ?? NaN,
      });
    } finally {
      await v.close!();
      live.splice(live.indexOf(v), 1);
    }
  }
  return out;
}

function log(message: string): void {
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
