import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { buildEncodeArgs, defaultTuning, type EncodeTuning } from '../src/pipeline/ffmpeg-args.js';
import { planEncode, type EncodeSettings } from '../src/pipeline/plan.js';
import { makePoster } from '../src/pipeline/poster.js';
import { defaultTools } from '../src/pipeline/tools.js';
import { createLogger } from '../src/process/logger.js';
import { probe } from '../src/pipeline/probe.js';
import { resolveInputs } from './inputs.js';
import { cpuTimes } from './proc.js';
import { measureFileQuality, type FileQuality } from './quality.js';
import { run } from './spawn.js';
import { spread, ratio } from './stats.js';
import { settingsFor } from './variants.js';

const usage = `tsx bench/levers.ts --levers SPEC;SPEC;… [--input generated] [--runs 3] [--no-quality]

Times our single FFmpeg encode (files written, as the pipeline writes them) with one lever changed at a time,
alternating the levers run by run; the first lever is the baseline of the ratios. A SPEC is comma-separated
key=value pairs: cascade=1, threads=N (x264 per rung), dthreads=N (decoder), fthreads=N (filter graph),
flags=bicubic|bilinear|fast_bilinear, scaler=zscale|swscale, preset=NAME, ladder=360:800k,720:2800k (use + instead of , there),
segment=SECONDS, maxrate=FACTOR and bufsize=FACTOR (of the target bitrate), poster=separate|inline (none by
default). An empty SPEC ("base") is our current default.`;

const stageContext = {
  tools: defaultTools(),
  logger: createLogger('silent'),
  idleTimeoutMs: 120_000,
  maxRuntimeMs: 3_600_000,
  tempDir: os.tmpdir(),
};

interface Lever {
  label: string;
  tuning: EncodeTuning;
  env: Record<string, string>;
  /** Encoder settings that have no environment variable. */
  settings: Partial<EncodeSettings>;
  /** Poster made by a second FFmpeg run afterwards (as convert does today), in the encode run, or not at all. */
  poster?: 'separate' | 'inline';
}

function parseLever(spec: string): Lever {
  const tuning: EncodeTuning = { ...defaultTuning };
  const env: Record<string, string> = {};
  const settings: Partial<EncodeSettings> = {};
  let poster: Lever['poster'];
  for (const pair of spec.split(',').filter((p) => p && p !== 'base')) {
    const [key, value = ''] = pair.split('=');
    if (key === 'cascade') tuning.cascade = value !== '0';
    else if (key === 'threads') tuning.x264Threads = Number(value);
    else if (key === 'dthreads') tuning.decodeThreads = Number(value);
    else if (key === 'fthreads') tuning.filterThreads = Number(value);
    else if (key === 'flags') tuning.scaleFlags = value;
    else if (key === 'scaler') env.SCALER = value;
    else if (key === 'preset') env.X264_PRESET = value;
    else if (key === 'ladder') env.LADDER = value.replace(/\+/g, ',');
    else if (key === 'segment') env.SEGMENT_DURATION = value;
    else if (key === 'maxrate') settings.maxrateFactor = Number(value);
    else if (key === 'bufsize') settings.bufsizeFactor = Number(value);
    else if (key === 'poster' && (value === 'separate' || value === 'inline')) poster = value;
    else throw new Error(`unknown lever "${key}"\n\n${usage}`);
  }
  return { label: spec || 'base', tuning, env, settings, poster };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      levers: { type: 'string' },
      input: { type: 'string' },
      runs: { type: 'string' },
      'no-quality': { type: 'boolean' },
    },
  });
  if (!values.levers) {
    console.log(usage);
    return;
  }
  const levers = values.levers.split(';').map(parseLever);
  const runs = Number(values.runs ?? 3);
  const [input] = await resolveInputs([values.input ?? 'generated'], false);
  const media = await probe(input!.path, { ffprobe: 'ffprobe' });
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'dvc-levers-'));
  const walls = new Map<string, number[]>(levers.map((l) => [l.label, []]));
  const cpus = new Map<string, number[]>(levers.map((l) => [l.label, []]));
  const quality = new Map<string, (FileQuality & { rung: string; kbps: number })[]>();
  console.error(`input ${input!.label}, load ${os.loadavg()[0]!.toFixed(2)}`);
  try {
    for (let round = 1; round <= runs; round++) {
      for (const lever of levers) {
        const plan = planEncode(media, { ...settingsFor(lever.env), ...lever.settings });
        const dir = await mkdtemp(path.join(tmp, 'run-'));
        const outputs = {
          video: Object.fromEntries(plan.renditions.map((r) => [r.name, path.join(dir, `${r.name}.mp4`)])),
          audio: Object.fromEntries(plan.audioTracks.map((a) => [a.name, path.join(dir, `${a.name}.mp4`)])),
          poster: lever.poster === 'inline' ? path.join(dir, 'poster.jpg') : undefined,
        };
        const args = buildEncodeArgs({ inputPath: input!.path, media, plan, outputs, tuning: lever.tuning });
        const before = cpuTimes('self').children;
        const t0 = performance.now();
        await run('ffmpeg', args);
        if (lever.poster === 'separate') {
          const top = plan.renditions[plan.renditions.length - 1]!;
          await makePoster({
            inputPath: input!.path,
            media,
            plan,
            size: top,
            outFile: path.join(dir, 'poster.jpg'),
            ctx: stageContext,
          });
        }
        const wall = performance.now() - t0;
        const cpu = cpuTimes('self').children - before;
        walls.get(lever.label)!.push(wall);
        cpus.get(lever.label)!.push(cpu);
        console.error(
          `  ${round}/${runs} ${lever.label.padEnd(40)} ${(wall / 1000).toFixed(2)} s cpu ${cpu.toFixed(2)} s`,
        );
        if (lever.poster) await stat(path.join(dir, 'poster.jpg')); // made, or this throws
        if (round === 1 && !values['no-quality']) {
          const q = [];
          for (const r of plan.renditions) {
            const file = outputs.video[r.name]!;
            const kbps = Math.round(((await stat(file)).size * 8) / media.duration / 1000);
            q.push({ rung: r.name, kbps, ...(await measureFileQuality(input!.path, file)) });
          }
          quality.set(lever.label, q);
        }
        await rm(dir, { recursive: true, force: true });
      }
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  const base = levers[0]!.label;
  const lines = [
    `Levers on ${input!.label} (${runs} alternated runs, load ${os.loadavg()[0]!.toFixed(2)} at end):`,
    '',
    '| lever | wall s median (min–max) | × base | CPU s | per rung: kbit/s, PSNR avg dB, SSIM all |',
    '|---|---|---|---|---|',
  ];
  for (const l of levers) {
    const w = spread(walls.get(l.label)!);
    const r = ratio(walls.get(l.label)!, walls.get(base)!);
    const q = (quality.get(l.label) ?? [])
      .map(
        (x) =>
          `${x.rung.replace('video_', '')} ${x.kbps} / ${x.psnrAvg.toFixed(2)} / ${x.ssimAll.toFixed(4)}`,
      )
      .join('; ');
    lines.push(
      `| ${l.label} | ${(w.median / 1000).toFixed(2)} (${(w.min / 1000).toFixed(2)}–${(w.max / 1000).toFixed(2)}) | ${r.median.toFixed(3)} (${r.min.toFixed(2)}–${r.max.toFixed(2)}) | ${spread(cpus.get(l.label)!).median.toFixed(1)} | ${q} |`,
    );
  }
  console.log(lines.join('\n'));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
