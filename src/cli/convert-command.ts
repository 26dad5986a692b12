import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, realpath, rename, rm, stat } from 'node:fs/promises';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../config/config.js';
import { TaskFailure } from '../domain/failures.js';
import { createLogger } from '../process/logger.js';
import { convert } from '../pipeline/convert.js';
import type { PackageResult } from '../pipeline/package.js';
import { checkTools, defaultTools } from '../pipeline/tools.js';
import { ProcessError } from '../process/run-process.js';
import { diskFullInstead } from '../jobs/fetch-input.js';
import { publishOrder } from '../jobs/publish.js';
import { convertUsage, parseConvertArgs } from './convert-args.js';
import type { StartedConvert } from './early-probe.js';

/**
 * `convert INPUT -o DIR`: the pipeline on one local file, without server or queue. `early` is what
 * `startProbe` read and started; without it (a command line or settings it could not take) the arguments are
 * read here, and their error reported.
 */
export async function runConvert(args: string[], early?: StartedConvert): Promise<number> {
  const parsed = early?.parsed ?? parseConvertArgs(args);
  if (!parsed) {
    console.error(`usage:\n${convertUsage}`);
    return 2;
  }
  const { input, quiet } = parsed;
  const config = early?.config ?? loadConfig(parsed.env);
  const probed = early?.probed;

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
  // Before any work: a conversion of an hour is not to end on "not a directory".
  // The system's temporary directory, or WORK_DIR when set (a /tmp on a small tmpfs cannot take a long video).
  const workRoot = parsed.env.WORK_DIR ? config.workDir : tmpdir();
  const refused = await outputProblem(outDir, parsed.force, inputPath, workRoot);
  if (refused) {
    console.error(`-o ${parsed.output}: ${refused}`);
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
  // What this run put in the output directory (an EARLY_MANIFEST package) goes if it does not complete; with
  // --force, what the directory held goes when the first of the new package arrives.
  const existed = existsSync(outDir);
  let wrote = false;
  const makeRoom = async () => {
    if (parsed.force && !wrote) await rm(outDir, { recursive: true, force: true });
    wrote = true;
  };
  const started = Date.now();
  try {
    const result = await convert(
      inputPath,
      workDir,
      {
        tools,
        logger,
        signal: controller.signal,
        idleTimeoutMs: config.watchdog.idleTimeoutMs,
        maxRuntimeMs: config.watchdog.maxRuntimeMs,
      },
      {
        settings: config.encode,
        limits: config.limits,
        probed,
        onProgress: (stage, f) => bar?.update(Math.round(f * 1000) / 10, { stage }),
        onEarlyPackage: config.earlyManifest
          ? async (early) => {
              await makeRoom();
              await copyPackage(early, outDir);
            }
          : undefined,
      },
    );
    // Stopped as the last program ended: stopped all the same.
    controller.signal.throwIfAborted();
    bar?.update(100, { stage: 'done' });
    bar?.stop();
    // --force: the old contents go only now that the new package is here to take their place.
    await makeRoom();
    await copyPackage(result.package, outDir, true);
    const seconds = (Date.now() - started) / 1000;
    console.log(
      `${result.package.files.length} files in ${outDir} (${seconds.toFixed(1)} s, ${(result.media.duration / seconds).toFixed(1)}× realtime)`,
    );
    for (const r of result.plan.renditions)
      console.log(`  ${r.name}: ${r.width}x${r.height} @ ${Math.round(r.bitrate / 1000)} kbit/s`);
    if (result.package.dashManifest) console.log(`  DASH: ${path.join(outDir, result.package.dashManifest)}`);
    if (result.package.hlsMaster) console.log(`  HLS:  ${path.join(outDir, result.package.hlsMaster)}`);
    return 0;
  } catch (caught) {
    bar?.stop();
    const err = await diskFullInstead(caught, workDir);
    // A program that could not be started: the tool check says which, and how to install it (it is not run
    // before every conversion: four programs started and waited for, for a message only a broken install needs).
    if (couldNotStart(err)) await checkTools(tools);
    if (wrote) {
      await rm(outDir, { recursive: true, force: true });
      if (existed) await mkdir(outDir, { recursive: true });
    }
    // Interrupted (Ctrl-C, a stop): the shell's code for the signal, so a script can tell it from a failure.
    if (stoppedBy) {
      console.error(`conversion interrupted (${stoppedBy})`);
      return 128 + os.constants.signals[stoppedBy];
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

/**
 * Why the output directory cannot take the package, if it cannot: a file in its place, or files of its own
 * (the package's would mix with them: an HLS master of an earlier run naming segments this one replaced).
 */
async function outputProblem(
  outDir: string,
  force: boolean,
  input: string,
  workRoot: string,
): Promise<string | undefined> {
  // --force replaces the directory whole: never one that holds the input, the working directory or a home.
  const inside = (dir: string, file: string) =>
    file === dir || file.startsWith(dir.endsWith(path.sep) ? dir : dir + path.sep);
  if (force) {
    // By their real paths: a link to the input, or a path through a link, is the same file.
    const real = (p: string) => realpath(p).catch(() => p);
    const [dir, file, cwd, home, work] = await Promise.all(
      [outDir, input, process.cwd(), os.homedir(), workRoot].map(real),
    );
    if (inside(dir!, file!)) return 'holds the input: --force would delete it with the rest';
    if (inside(dir!, cwd!)) return 'holds the working directory: --force would delete it';
    if (inside(dir!, home!)) return 'holds the home directory: --force would delete it';
    // The package is made there: it would go before it could be moved into place.
    if (inside(dir!, work!)) return 'holds the temporary directory: --force would delete it';
  }
  let entries: string[];
  try {
    entries = await readdir(outDir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ENOTDIR') return 'a file is in the way: not a directory';
    return (err as Error).message;
  }
  if (entries.length > 0 && !force)
    return 'not empty: give a new or empty directory, or --force to replace what it holds';
  return undefined;
}

function couldNotStart(err: unknown): boolean {
  const cause = err instanceof Error && err.cause !== undefined ? err.cause : err;
  return cause instanceof ProcessError && cause.kind === 'spawn';
}

/**
 * Copies a package into the output directory, media first and manifests last, so that a player reading the
 * directory meanwhile (as with EARLY_MANIFEST) never finds a manifest whose segments are not there yet.
 * `move` (the final package, which nothing reads afterwards) renames instead where the work directory is on
 * the same filesystem: the whole directory at once when the output directory is new or empty, else file by
 * file.
 */
async function copyPackage(pkg: PackageResult, outDir: string, move = false): Promise<void> {
  if (move) {
    const whole = await renameWhole(pkg.dir, outDir);
    if (whole === 'moved') return;
    // Another filesystem: every file's rename would fail the same way before its copy.
    if (whole === 'other-filesystem') move = false;
  }
  for (const file of publishOrder(pkg.files).flat()) {
    const from = path.join(pkg.dir, file);
    const to = path.join(outDir, file);
    await mkdir(path.dirname(to), { recursive: true });
    if (move) {
      try {
        await rename(from, to);
        continue;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
      }
    }
    await copyFile(from, to);
  }
}

/**
 * Moves the whole package directory into place with one rename (atomic, and one system call instead of two
 * per file) when the output directory does not exist yet or is empty; otherwise says why it could not (files
 * already there, another filesystem), and the files are then moved or copied one by one.
 */
async function renameWhole(from: string, to: string): Promise<'moved' | 'occupied' | 'other-filesystem'> {
  await mkdir(path.dirname(to), { recursive: true });
  try {
    await rename(from, to);
    return 'moved';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EXDEV') return 'other-filesystem';
    if (code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'ENOTDIR') return 'occupied';
    throw err;
  }
}
