import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { buildEncodeArgs } from '../src/pipeline/ffmpeg-args.js';
import { planEncode, type EncodePlan } from '../src/pipeline/plan.js';
import { probe } from '../src/pipeline/probe.js';
import { isVideoCodec, type VideoCodec } from '../src/pipeline/video-codecs.js';
import { runProcess } from '../src/process/run-process.js';
import { resolveInputs } from './inputs.js';
import { cpuTimes } from './proc.js';
import { measureFileQuality, type FileQuality } from './quality.js';
import { run } from './spawn.js';
import { ratio, spread } from './stats.js';
import { settingsFor } from './variants.js';

const usage = `npm run bench:codecs -- [--inputs generated:1920x1080:6,bbb_720p_30s_vp8_vorbis.webm] [--seconds 10]
       [--variants "h264;av1;vp9;hevc"] [--ladder 360:550k+720:2800k] [--runs 3] [--no-quality]

Times the pipeline's one FFmpeg encode (one decode, one scaler per rung) with each variant's codecs, alternating
the variants run by run, against H.264 alone in the same run. A variant is codecs joined by + (h264+av1: both in
one run, as a package with both has them), with SVT-AV1 options after a colon: av1:preset=10,
av1:params=fast-decode=1:lp=2 (replacing the pipeline's -svtav1-params), av1:preset=12:params=tune=0 … A
"decode" run (the same decode and scalers, frames thrown away) is timed as well, so that each encoder's own CPU
is the run's less that. Per rung: kbit/s as written and PSNR against the source (first run).`;

interface Variant {
  label: string;
  codecs: VideoCodec[];
  /** SVT-AV1 preset and -svtav1-params instead of the pipeline's. */
  av1Preset?: string;
  av1Params?: string;
  /** Decode and scale only: every video output to the null muxer. */
  decodeOnly?: boolean;
}

function parseVariant(spec: string): Variant {
  if (spec === 'decode') return { label: spec, codecs: ['h264'], decodeOnly: true };
  const [codecList = '', ...options] = spec.split(':');
  const codecs = codecList.split('+');
  const bad = codecs.filter((c) => !isVideoCodec(c));
  if (bad.length) throw new Error(`unknown codec ${bad.join(', ')}\n\n${usage}`);
  const variant: Variant = { label: spec, codecs: codecs as VideoCodec[] };
  // `params=` takes the rest, which has colons of its own.
  const paramsAt = options.findIndex((o) => o.startsWith('params='));
  const plain = paramsAt >= 0 ? options.slice(0, paramsAt) : options;
  for (const o of plain) {
    const [key, value = ''] = o.split('=');
    if (key === 'preset') variant.av1Preset = value;
    else throw new Error(`unknown option "${o}"\n\n${usage}`);
  }
  if (paramsAt >= 0) variant.av1Params = options.slice(paramsAt).join(':').slice('params='.length);
  return variant;
}

/** The pipeline's arguments with the variant's SVT-AV1 options, or with null outputs for `decode`. */
function variantArgs(args: string[], variant: Variant): string[] {
  const out = [...args];
  if (variant.decodeOnly) {
    // Each video output: `-map [vN]` … `file:X` becomes `-map [vN] -f null -`.
    const result: string[] = [];
    for (let i = 0; i < out.length; i++) {
      if (out[i] === '-map' && /^\[v\d+\]$/.test(out[i + 1] ?? '')) {
        const end = out.findIndex((a, j) => j > i && a.startsWith('file:'));
        result.push('-map', out[i + 1]!, '-f', 'null', '-');
        i = end;
      } else result.push(out[i]!);
    }
    return result;
  }
  for (let i = 0; i < out.length; i++) {
    if (out[i] !== '-c:v' || out[i + 1] !== 'libsvtav1') continue;
    const presetAt = out.indexOf('-preset', i);
    if (variant.av1Preset && presetAt > 0) out[presetAt + 1] = variant.av1Preset;
    const paramsAt = out.indexOf('-svtav1-params', i);
    if (variant.av1Params !== undefined && paramsAt > 0) out[paramsAt + 1] = variant.av1Params;
  }
  return out;
}

async function trimmed(input: string, seconds: number, dir: string): Promise<string> {
  const file = path.join(dir, `trimmed-${path.basename(input)}${path.extname(input) ? '' : '.mkv'}`);
  await runProcess('ffmpeg', [
    ...['-hide_banner', '-nostdin', '-v', 'error', '-y', '-i', input],
    ...['-t', String(seconds), '-map', '0:v:0', '-c', 'copy', file],
  ]);
  return file;
}

interface RungResult extends Partial<FileQuality> {
  name: string;
  codec: VideoCodec;
  height: number;
  kbps: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      inputs: { type: 'string' },
      seconds: { type: 'string' },
      variants: { type: 'string' },
      ladder: { type: 'string' },
      runs: { type: 'string' },
      'no-quality': { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    console.log(usage);
    return;
  }
  const variants = ['h264', 'decode', ...(values.variants ?? 'av1;vp9;hevc').split(';')]
    .filter((v, i, all) => v && all.indexOf(v) === i)
    .map(parseVariant);
  const runs = Number(values.runs ?? 3);
  const env: Record<string, string> = values.ladder ? { LADDER: values.ladder.replace(/\+/g, ',') } : {};
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'dvc-codecs-'));
  const inputs = await resolveInputs(
    (values.inputs ?? 'generated:1920x1080:6,bbb_720p_30s_vp8_vorbis.webm').split(','),
    false,
  );
  const lines: string[] = [];
  try {
    for (const input of inputs) {
      const source = values.seconds ? await trimmed(input.path, Number(values.seconds), tmp) : input.path;
      const media = await probe(source, { ffprobe: 'ffprobe' });
      const cpu = new Map<string, number[]>(variants.map((v) => [v.label, []]));
      const wall = new Map<string, number[]>(variants.map((v) => [v.label, []]));
      const rungs = new Map<string, RungResult[]>();
      console.error(
        `input ${input.label} (${media.duration.toFixed(1)} s), load ${os.loadavg()[0]!.toFixed(2)}`,
      );
      for (let round = 1; round <= runs; round++) {
        for (const variant of variants) {
          const plan: EncodePlan = { ...planEncode(media, { ...settingsFor(env), codecs: variant.codecs }) };
          plan.audioTracks = [];
          const dir = await mkdtemp(path.join(tmp, 'run-'));
          const outputs = {
            video: Object.fromEntries(plan.renditions.map((r) => [r.name, path.join(dir, `${r.name}.mp4`)])),
            audio: {},
          };
          const args = variantArgs(buildEncodeArgs({ inputPath: source, media, plan, outputs }), variant);
          const before = cpuTimes('self').children;
          const t0 = performance.now();
          await run('ffmpeg', args);
          wall.get(variant.label)!.push((performance.now() - t0) / 1000);
          cpu.get(variant.label)!.push(cpuTimes('self').children - before);
          console.error(
            `  ${round}/${runs} ${variant.label.padEnd(36)} ${wall.get(variant.label)!.at(-1)!.toFixed(2)} s, cpu ${cpu.get(variant.label)!.at(-1)!.toFixed(2)} s, load ${os.loadavg()[0]!.toFixed(2)}`,
          );
          if (round === 1 && !variant.decodeOnly) {
            const results: RungResult[] = [];
            for (const r of plan.renditions) {
              const file = outputs.video[r.name]!;
              const kbps = ((await stat(file)).size * 8) / media.duration / 1000;
              const q = values['no-quality'] ? {} : await measureFileQuality(source, file);
              results.push({ name: r.name, codec: r.codec, height: Math.min(r.width, r.height), kbps, ...q });
            }
            rungs.set(variant.label, results);
          }
          await rm(dir, { recursive: true, force: true });
        }
      }
      lines.push(...table(input.label, media.duration, runs, variants, cpu, wall, rungs));
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  console.log(lines.join('\n'));
}

function table(
  label: string,
  duration: number,
  runs: number,
  variants: Variant[],
  cpu: Map<string, number[]>,
  wall: Map<string, number[]>,
  rungs: Map<string, RungResult[]>,
): string[] {
  const decode = cpu.get('decode')!;
  const h264 = cpu.get('h264')!;
  // An encoder's own CPU: the run's less the decode and scalers', round by round.
  const own = (label: string) => cpu.get(label)!.map((c, i) => c - (decode[i] ?? NaN));
  const baseRungs = rungs.get('h264') ?? [];
  const out = [
    '',
    `${label}, ${duration.toFixed(1)} s (${runs} alternated runs, load ${os.loadavg()[0]!.toFixed(2)} at end):`,
    '',
    '| variant | wall s | CPU s | CPU × h264 run | encoder CPU × x264 | per rung: kbit/s (× h264), PSNR avg dB (Δ h264) |',
    '|---|---|---|---|---|---|',
  ];
  for (const v of variants) {
    const c = cpu.get(v.label)!;
    const w = spread(wall.get(v.label)!);
    const enc = v.decodeOnly ? '—' : ratio(own(v.label), own('h264'));
    const perRung = (rungs.get(v.label) ?? [])
      .map((r) => {
        const base = baseRungs.find((b) => b.height === r.height);
        const bytes = base ? ` (${(r.kbps / base.kbps).toFixed(2)}×)` : '';
        const psnr =
          r.psnrAvg !== undefined
            ? `, ${r.psnrAvg.toFixed(2)}${base?.psnrAvg !== undefined ? ` (${signed(r.psnrAvg - base.psnrAvg)})` : ''}`
            : '';
        return `${r.codec} ${r.height}p ${Math.round(r.kbps)}${bytes}${psnr}`;
      })
      .join('; ');
    const runRatio = ratio(c, h264);
    out.push(
      `| ${v.label} | ${w.median.toFixed(2)} | ${spread(c).median.toFixed(1)} | ${runRatio.median.toFixed(2)} (${runRatio.min.toFixed(2)}–${runRatio.max.toFixed(2)}) | ${typeof enc === 'string' ? enc : `${enc.median.toFixed(2)} (${enc.min.toFixed(2)}–${enc.max.toFixed(2)})`} | ${perRung || '—'} |`,
    );
  }
  return out;
}

const signed = (x: number) => `${x >= 0 ? '+' : ''}${x.toFixed(2)}`;

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
