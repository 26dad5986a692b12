import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../config/config.js';
import { TaskFailure } from '../domain/failures.js';
import { toWire } from '../domain/schemas/wire.js';
import type { WireTaskOutput } from '../domain/task.js';
import { describeFailures, type QcReport } from '../domain/qc-report.js';
import { resolveRequestEncryption } from '../jobs/encode-settings.js';
import type { JobSettings } from '../jobs/job-settings.js';
import { runConversion } from '../jobs/run-conversion.js';
import { checkTools, defaultTools } from '../pipeline/tools.js';
import { createLogger } from '../process/logger.js';
import { ProcessError } from '../process/run-process.js';
import { convertUsage, parseConvertArgs } from './convert-args.js';
import type { StartedConvert } from './early-probe.js';
import { directoryDestination, outputProblem } from './output-dir.js';

/**
 * `convert INPUT -o DIR`: the conversion runner on one local file, without server or queue. `early` is what
 * `startProbe` read and started; without it the arguments are read here, and their error reported.
 */
export async function runConvert(args: string[], early?: StartedConvert): Promise<number> {
  const parsed = early?.parsed ?? parseConvertArgs(args);
  if (!parsed) {
    console.error(`usage:\n${convertUsage}`);
    return 2;
  }
  const { input, quiet } = parsed;
  const config = early?.config ?? loadConfig(parsed.env);

  const inputPath = path.resolve(input);
  const outDir = path.resolve(parsed.output);
  const missing = await stat(inputPath).then(
    (s) => (s.isFile() ? undefined : 'not a file'),
    (err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? 'no such file' : err.message),
  );
  if (missing) {
    console.error(`${input}: ${missing}`);
    return 1;
  }
  for (const s of parsed.subtitles) {
    const isFile = await stat(s.file).then(
      (st) => st.isFile(),
      () => false,
    );
    if (!isFile) {
      console.error(`--subtitles ${s.language}=${s.file}: no such file`);
      return 1;
    }
  }
  const subtitleFiles = Object.fromEntries(parsed.subtitles.map((s) => [s.file, path.resolve(s.file)]));
  // Before any work: a conversion of an hour is not to end on "not a directory".
  // The system's temporary directory, or WORK_DIR when set (a /tmp on a small tmpfs cannot take a long video).
  const workRoot = parsed.env.WORK_DIR ? config.workDir : tmpdir();
  const refused = await outputProblem({ outDir, force: parsed.force, input: inputPath, workRoot });
  if (refused) {
    console.error(`-o ${parsed.output}: ${refused}`);
    return 2;
  }
  const reportFile = parsed.report === undefined ? undefined : path.resolve(parsed.report);
  const reportRefused = reportFile && (await reportProblem(reportFile));
  if (reportRefused) {
    console.error(`--report ${parsed.report}: ${reportRefused}`);
    return 2;
  }
  let encryption;
  try {
    const request = { videoFilename: input, ...(parsed.encrypt ? { encryption: {} } : {}) };
    encryption = resolveRequestEncryption(config, request, config.encode);
  } catch (err) {
    if (!(err instanceof TaskFailure)) throw err;
    console.error(`--encryption: ${err.message}`);
    return 2;
  }
  const logger = createLogger(process.env.LOG_LEVEL ?? 'warn', process.stderr);
  const tools = defaultTools(config.tools);
  const controller = new AbortController();
  await mkdir(workRoot, { recursive: true });
  const workDir = await mkdtemp(path.join(workRoot, 'dvc-convert-'));
  // The progress bar's module is loaded only when a bar is shown.
  const bar = quiet
    ? undefined
    : await import('cli-progress').then(
        ({ SingleBar, Presets }) =>
          new SingleBar(
            { format: ' {bar} {percentage}% | {stage} | {duration_formatted}', hideCursor: true },
            Presets.shades_classic,
          ),
      );
  bar?.start(100, 0, { stage: 'probe' });
  let stoppedBy: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    stoppedBy = signal;
    controller.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let qc: QcReport | undefined;
  const started = Date.now();
  try {
    const { output, conversion } = await runConversion({
      source: { resolve: () => Promise.resolve({ path: inputPath, subtitles: subtitleFiles }) },
      destination: directoryDestination({ outDir, force: parsed.force }),
      settings: {
        ...config.encode,
        ...(parsed.audio ? { audioTracks: parsed.audio } : {}),
        subtitles: parsed.subtitles.map((s) => ({ filename: s.file, language: s.language })),
      },
      encryption,
      config,
      tools,
      workDir,
      logger,
      signal: controller.signal,
      probed: early?.probed,
      onProgress: ({ stage, progress }) => bar?.update(Math.round(progress * 10) / 10, { stage }),
      onQc: (report) => (qc = report),
    });
    bar?.update(100, { stage: 'done' });
    bar?.stop();
    if (reportFile)
      await writeFile(reportFile, `${JSON.stringify(toWire<WireTaskOutput>(output), null, 2)}\n`);
    const seconds = (Date.now() - started) / 1000;
    console.log(
      `${output.files} files in ${outDir} (${seconds.toFixed(1)} s, ${(output.duration / seconds).toFixed(1)}× realtime)`,
    );
    for (const r of output.renditions)
      console.log(`  ${r.name}: ${r.width}x${r.height} @ ${Math.round(r.bitrate / 1000)} kbit/s`);
    const pkg = conversion.package;
    if (pkg.dashManifest) console.log(`  DASH: ${path.join(outDir, pkg.dashManifest)}`);
    if (pkg.hlsMaster) console.log(`  HLS:  ${path.join(outDir, pkg.hlsMaster)}`);
    console.log(qcLine(qc, config.qc.mode));
    if (reportFile) console.log(`  report: ${reportFile}`);
    return 0;
  } catch (err) {
    bar?.stop();
    // A program that could not be started: the tool check says which, and how to install it (it is not run
    // before every conversion: four programs started and waited for, for a message only a broken install needs).
    if (couldNotStart(err)) await checkTools(tools);
    // Interrupted (Ctrl-C, a stop): the shell's code for the signal, so a script can tell it from a failure.
    if (stoppedBy) {
      console.error(`conversion interrupted (${stoppedBy})`);
      return 128 + os.constants.signals[stoppedBy];
    }
    if (err instanceof TaskFailure && err.code === 'qc_failed' && qc) {
      console.error(qcLine(qc, config.qc.mode));
      console.error('conversion failed: the package failed its quality checks (QC_MODE=enforce)');
      return 1;
    }
    if (err instanceof TaskFailure) {
      console.error(`conversion failed: ${err.message}`);
      return 1;
    }
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await rm(workDir, { recursive: true, force: true });
  }
}

/** The package check's verdict in one line. */
function qcLine(qc: QcReport | undefined, mode: JobSettings['qc']['mode']): string {
  if (!qc) return `QC: skipped (QC_MODE=${mode})`;
  if (qc.passed) return `QC: passed (${qc.checks.length} checks)`;
  return `QC: failed — ${describeFailures(qc)}${mode === 'warn' ? ' (QC_MODE=warn: the package is kept)' : ''}`;
}

/** Why the report cannot be written where asked, if it cannot: found before the conversion, not after. */
async function reportProblem(file: string): Promise<string | undefined> {
  const dir = await stat(path.dirname(file)).catch(() => undefined);
  if (!dir?.isDirectory()) return 'its directory does not exist';
  const there = await stat(file).catch(() => undefined);
  if (there?.isDirectory()) return 'is a directory';
  return undefined;
}

function couldNotStart(err: unknown): boolean {
  const cause = err instanceof Error && err.cause !== undefined ? err.cause : err;
  return cause instanceof ProcessError && cause.kind === 'spawn';
}
