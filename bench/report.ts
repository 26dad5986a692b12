import type { SplitBenchResult } from './split.js';
import type { MachineInfo } from './machine.js';
import type { RungQuality } from './quality.js';
import { ratio, spread, type Spread } from './stats.js';
import type { ThroughputResult } from './throughput.js';
import type { RunResult } from './variants.js';

export interface VariantResult {
  name: string;
  description: string;
  env: Record<string, string>;
  runs: Omit<RunResult, 'packageDir'>[];
  quality?: RungQuality[];
}

export interface InputResult {
  label: string;
  path: string;
  media: {
    duration: number;
    width: number;
    height: number;
    frameRate: number;
    codec: string;
    audio: boolean;
  };
  variants: VariantResult[];
}

export interface RssLongResult {
  inputSeconds: number;
  wallMs: number;
  nodePeakRss: number;
  ffmpegPeakRss: number;
}

export interface BenchResults {
  startedAt: string;
  finishedAt: string;
  /** 1-minute load average when the bench ended. */
  loadAverageEnd?: number;
  machine: MachineInfo;
  options: { runs: number; quick: boolean; variants: string[] };
  inputs: InputResult[];
  throughput?: ThroughputResult[];
  rssLong?: RssLongResult[];
  /** The first-playable-manifest comparison on a longer input: seed, server and server-early. */
  early?: InputResult;
  /** Split and stitch against one run (bench/split.ts). */
  split?: SplitBenchResult;
  /** Parts of the run that failed, with the first line of the reason. */
  errors: string[];
}

/** The limit each of our variants is compared with: the same encoder settings without muxing or packaging. */
const limitFor: Record<string, string> = {
  cli: 'limit',
  server: 'limit',
  'cli-seedcfg': 'limit-seedcfg',
  'server-seedcfg': 'limit-seedcfg',
  'server-seedprofile': 'limit-seedcfg',
};

const s2 = (ms: number) => (ms / 1000).toFixed(2);
const mb = (bytes: number | undefined) =>
  bytes === undefined || !Number.isFinite(bytes) ? '–' : (bytes / 2 ** 20).toFixed(0);
const fmtSpread = (s: Spread, f: (x: number) => string) =>
  s.n === 0 ? '–' : s.n === 1 ? f(s.median) : `${f(s.median)} (${f(s.min)}–${f(s.max)})`;
const fmtRatio = (s: Spread) => fmtSpread(s, (x) => x.toFixed(2));
const maxOf = (xs: (number | undefined)[]) => {
  const v = xs.filter((x): x is number => x !== undefined);
  return v.length ? Math.max(...v) : undefined;
};

const wall = (v: VariantResult) => v.runs.map((r) => r.wallMs);

export function renderMarkdown(results: BenchResults): string {
  const m = results.machine;
  const lines: string[] = [
    `Run ${results.startedAt} → ${results.finishedAt}, ${results.options.runs} alternated runs per variant${results.options.quick ? ' (quick)' : ''}.`,
    '',
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.kernel}, Node ${m.node}, load average ${m.loadAverage} at start, ${results.loadAverageEnd ?? '?'} at the end.`,
    `Tools: ${m.ffmpeg}; Shaka Packager ${m.packager}.`,
    '',
  ];
  for (const input of results.inputs) lines.push(...renderInput(input));
  if (results.early) {
    // The same table; its heading says what this input is for.
    const [, ...rest] = renderInput(results.early);
    lines.push(`### Longer input (first playable manifest, seed settings): ${results.early.label}`, ...rest);
  }
  lines.push(...renderTargets(results));
  if (results.errors.length)
    lines.push('Failed parts of this run:', '', ...results.errors.map((e) => `- ${e}`), '');
  return lines.join('\n') + '\n';
}

function renderInput(input: InputResult): string[] {
  const { media } = input;
  const byName = new Map(input.variants.map((v) => [v.name, v]));
  const seed = byName.get('seed');
  const lines = [
    `### ${input.label}`,
    '',
    `${media.width}x${media.height} ${media.codec}, ${media.frameRate} fps, ${media.duration.toFixed(1)} s, ${media.audio ? 'with' : 'no'} audio.`,
    '',
    '| variant | wall s, median (min–max) | × seed | × limit | CPU s | CPU s ffmpeg / packager / node | first manifest s | peak RSS MB node / ffmpeg / packager | output MB |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const v of input.variants) {
    const limit = byName.get(limitFor[v.name] ?? '');
    const peak = (p: string) => mb(maxOf(v.runs.map((r) => r.peakRss.byProgram[p])));
    const first = v.runs.map((r) => r.firstManifestMs).filter((x): x is number => x !== undefined);
    lines.push(
      [
        '',
        `**${v.name}**`,
        fmtSpread(spread(wall(v)), s2),
        seed && v !== seed ? fmtRatio(ratio(wall(v), wall(seed))) : '',
        limit ? fmtRatio(ratio(wall(v), wall(limit))) : '',
        spread(v.runs.map((r) => r.cpu.total)).median.toFixed(1),
        ['ffmpeg', 'packager', 'node']
          .map((p) => {
            const xs = v.runs.map((r) => (p === 'node' ? r.cpu.node : r.cpuByProgram[p]) ?? NaN);
            const med = spread(xs).median;
            return Number.isFinite(med) ? med.toFixed(2) : '–';
          })
          .join(' / '),
        first.length ? s2(spread(first).median) : '',
        `${peak('node')} / ${peak('ffmpeg')} / ${peak('packager')}`,
        v.runs[0]!.outputBytes ? (spread(v.runs.map((r) => r.outputBytes)).median / 2 ** 20).toFixed(1) : '',
        '',
      ]
        .join(' | ')
        .trim(),
    );
  }
  lines.push('');
  const withQuality = input.variants.filter((v) => v.quality?.length);
  if (withQuality.length) {
    lines.push(
      '| variant | rung | size | kbit/s | PSNR Y dB | PSNR avg dB | SSIM Y | SSIM all |',
      '|---|---|---|---|---|---|---|---|',
    );
    for (const v of withQuality) {
      for (const q of v.quality!) {
        lines.push(
          `| ${v.name} | ${q.rung} | ${q.width}x${q.height} | ${q.kbps} | ${q.psnrY.toFixed(2)} | ${q.psnrAvg.toFixed(2)} | ${q.ssimY.toFixed(4)} | ${q.ssimAll.toFixed(4)} |`,
        );
      }
    }
    lines.push('');
  }
  return lines;
}

function renderTargets(results: BenchResults): string[] {
  const lines = ['### Targets (medians)', ''];
  const input = results.inputs[0];
  const verdict = (ok: boolean | undefined) =>
    ok === undefined ? 'not measured' : ok ? '**met**' : '**not met**';
  if (input) {
    const byName = new Map(input.variants.map((v) => [v.name, v]));
    const cpu = (v: VariantResult) => v.runs.map((x) => x.cpu.total);
    // A wall ratio whose rounds disagree by more than 20 % was measured while something else took the cores.
    const ratioCheck = (label: string, a: string, b: string, limit: number, variants = byName) => {
      const va = variants.get(a);
      const vb = variants.get(b);
      if (!va || !vb) return `| ${label} | – | – | ≤ ${limit} | not measured |`;
      const w = ratio(wall(va), wall(vb));
      const noisy = w.max / w.min > 1.2;
      return `| ${label} | ${fmtRatio(w)} | ${ratio(cpu(va), cpu(vb)).median.toFixed(2)} | ≤ ${limit} | ${noisy ? 'too noisy to judge' : verdict(w.median <= limit)} |`;
    };
    const check = (label: string, value: number | undefined, limit: number) =>
      `| ${label} | ${value === undefined ? '–' : value.toFixed(2)} | | ≤ ${limit} | ${verdict(value === undefined ? undefined : value <= limit)} |`;
    lines.push(
      `Input: ${input.label}, unless the row names another. Wall ratios are judged; CPU ratios (which the machine's other load hardly moves) are shown beside them.`,
      '',
      '| target | wall ratio (per-round range) | CPU ratio | goal | |',
      '|---|---|---|---|---|',
    );
    lines.push(ratioCheck('seed settings: CLI / seed', 'cli-seedcfg', 'seed', 0.55));
    lines.push(ratioCheck('seed settings: server / seed', 'server-seedcfg', 'seed', 0.55));
    lines.push(ratioCheck('seed settings: limit / seed (for reference)', 'limit-seedcfg', 'seed', 0.55));
    lines.push(ratioCheck('seed settings: CLI / limit', 'cli-seedcfg', 'limit-seedcfg', 1.08));
    lines.push(ratioCheck('seed settings: server / limit', 'server-seedcfg', 'limit-seedcfg', 1.08));
    lines.push(ratioCheck('defaults: CLI / seed', 'cli', 'seed', 1.0));
    lines.push(ratioCheck('defaults: server / seed', 'server', 'seed', 1.0));
    // Seek-bar thumbnails: judged on CPU (the issue's budget), the wall ratio shown beside it.
    const cpuCheck = (label: string, a: string, b: string, limit: number, variants = byName) => {
      const va = variants.get(a);
      const vb = variants.get(b);
      if (!va || !vb) return `| ${label} | – | – | CPU ≤ ${limit} | not measured |`;
      const c = ratio(cpu(va), cpu(vb));
      return `| ${label} | ${fmtRatio(ratio(wall(va), wall(vb)))} | ${c.median.toFixed(3)} (${c.min.toFixed(3)}–${c.max.toFixed(3)}) | CPU ≤ ${limit} | ${verdict(c.median <= limit)} |`;
    };
    lines.push(cpuCheck('thumbnails: CLI / CLI without', 'cli', 'cli-nothumbs', 1.05));
    for (const name of ['server', 'cli']) {
      const v = byName.get(name);
      if (!v) continue;
      const f = v.runs.map((x) => (x.firstManifestMs ?? NaN) / x.wallMs);
      lines.push(check(`first manifest / total (${name})`, spread(f).median, 0.6));
      break;
    }
    const early = results.early && new Map(results.early.variants.map((v) => [v.name, v]));
    if (early) {
      // The seed settings again on the longer input, where the fixed costs weigh less.
      const long = `, ${results.early!.label}`;
      lines.push(ratioCheck(`seed settings: CLI / seed${long}`, 'cli-seedcfg', 'seed', 0.55, early));
      lines.push(ratioCheck(`seed settings: server / seed${long}`, 'server-seedcfg', 'seed', 0.55, early));
      lines.push(
        ratioCheck(`seed settings: CLI / limit${long}`, 'cli-seedcfg', 'limit-seedcfg', 1.08, early),
      );
      lines.push(
        ratioCheck(`seed settings: server / limit${long}`, 'server-seedcfg', 'limit-seedcfg', 1.08, early),
      );
      lines.push(cpuCheck(`thumbnails: CLI / CLI without${long}`, 'cli', 'cli-nothumbs', 1.05, early));
      for (const name of ['server', 'server-early']) {
        const v = early.get(name);
        if (!v) continue;
        const f = v.runs.map((x) => (x.firstManifestMs ?? NaN) / x.wallMs);
        lines.push(check(`first manifest / total (${name}, ${results.early!.label})`, spread(f).median, 0.6));
      }
      const [se, s, seed] = ['server-early', 'server', 'seed'].map((n) => early.get(n));
      if (se && s)
        lines.push(
          `| server-early / server total (for reference) | ${fmtRatio(ratio(wall(se), wall(s)))} | ${ratio(cpu(se), cpu(s)).median.toFixed(2)} | | |`,
        );
      if (se && seed)
        lines.push(
          `| server-early / seed total (for reference) | ${fmtRatio(ratio(wall(se), wall(seed)))} | ${ratio(cpu(se), cpu(seed)).median.toFixed(2)} | | |`,
        );
    }
    lines.push('');
    const seedQ = byName.get('seed')?.quality;
    for (const name of ['cli', 'cli-seedrates']) {
      const q = byName.get(name)?.quality;
      if (!seedQ || !q) continue;
      lines.push(`Quality, ${name} vs seed (PSNR avg, bitrate):`, '');
      for (const rung of q) {
        const s = seedQ.find((x) => x.height === rung.height);
        if (!s) continue;
        const ok = rung.psnrAvg >= s.psnrAvg && rung.kbps <= s.kbps;
        lines.push(
          `- ${rung.rung}: ${rung.psnrAvg.toFixed(2)} dB at ${rung.kbps} kbit/s vs ${s.psnrAvg.toFixed(2)} dB at ${s.kbps} kbit/s: ${ok ? 'equal or better at equal or lower bitrate' : rung.psnrAvg >= s.psnrAvg ? 'better PSNR but at a higher bitrate' : 'lower PSNR'}`,
        );
      }
      lines.push('');
    }
  }
  if (results.rssLong?.length) {
    const worst = Math.max(...results.rssLong.map((x) => x.nodePeakRss));
    lines.push(
      `Service peak RSS (Node process, FFmpeg excluded): ${results.rssLong.map((x) => `${mb(x.nodePeakRss)} MB for ${x.inputSeconds} s (conversion ${s2(x.wallMs)} s)`).join(', ')}; goal < 250 MB for both: ${verdict(worst < 250 * 2 ** 20)}.`,
      '',
    );
  }
  for (const t of results.throughput ?? []) {
    lines.push(
      `POST /encode on the embedded queue (autocannon, ${t.connections} connections, ${t.seconds} s, LOG_LEVEL=${t.logLevel}): ${t.requestsPerSecond} req/s, p50 ${t.latencyMs.p50} ms, p99 ${t.latencyMs.p99} ms, max ${t.latencyMs.max} ms, ${t.non2xx} non-2xx, ${t.errors} errors, server CPU ${t.serverCpuSeconds} s; goal ≥ 2000 req/s with p99 < 25 ms: ${verdict(t.requestsPerSecond >= 2000 && t.latencyMs.p99 < 25 && t.non2xx === 0)}.`,
      '',
    );
  }
  return lines;
}
