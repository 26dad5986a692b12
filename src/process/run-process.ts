import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';
import { launchTiedToParent, setprivExecFailure } from './parent-death.js';

/**
 * How much of a failed command's stderr is kept for the error message: enough to reach past the statistics
 * FFmpeg's encoders print on closing (about 1.2 KB each for x264) to the line that says what went wrong.
 */
const STDERR_TAIL_BYTES = 16 * 1024;
/** Most stdout collected (when no line handler takes it): beyond it the program is stopped, not cut short. */
const MAX_STDOUT_CHARS = 16 * 1024 * 1024;

export interface RunProcessOptions {
  logger?: Logger;
  signal?: AbortSignal;
  /** Called with each line the process writes to stdout. */
  onStdoutLine?: (line: string) => void;
  /** Kill the process when it runs longer than this. */
  timeoutMs?: number;
  /** Kill the process when it writes nothing (stdout or stderr) for this long. */
  idleTimeoutMs?: number;
  /**
   * Stop the program as failed when a stderr line matches: an error it does not exit on (Shaka Packager waits
   * on its input pipes after its last words), or one that makes the rest pointless (a full disk).
   */
  failOnStderr?: RegExp;
  /** Time between SIGTERM and SIGKILL when stopping the process. */
  killGraceMs?: number;
  cwd?: string;
  /**
   * The program's temporary directory (`TMPDIR`): a task's work directory, so that temporary files sit on the
   * disk of the files they become (a rename across disks fails with EXDEV) and go with the task.
   */
  tempDir?: string;
  /**
   * Start the program through `setpriv --pdeathsig KILL` so that it dies with this process (default). A
   * program that is over in milliseconds (mkfifo) is started directly: one exec less.
   */
  tiedToParent?: boolean;
}

/** `fatal`: stopped on a line of its stderr (`failOnStderr`), as if it had exited with that error. */
export type ProcessFailureKind = 'exit' | 'fatal' | 'aborted' | 'timeout' | 'idle' | 'spawn' | 'output';

export class ProcessError extends Error {
  constructor(
    message: string,
    readonly kind: ProcessFailureKind,
    readonly command: string,
    readonly exitCode: number | null,
    readonly exitSignal: NodeJS.Signals | null,
    readonly stderrTail: string,
    /** The program's file name (`ffmpeg`), for messages that must not show its path. */
    readonly program = '',
  ) {
    super(message);
    this.name = 'ProcessError';
  }
}

/** URLs lose their query (a presigned URL's signature): for logs and error messages. */
export function redactUrls(text: string): string {
  return text.replace(/\b(https?:\/\/[^\s?'"]*)\?[^\s'"]*/gi, '$1?<redacted>');
}

/** Quotes an argument list the way `bash -x` shows it, for logs only: nothing is ever run through a shell. */
export function formatCommand(command: string, args: readonly string[]): string {
  return [command, ...args.map(redactUrls)]
    .map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`))
    .join(' ');
}

/**
 * Runs a program from an argument array, stdin closed, in its own process group and tied to this process
 * (parent-death.ts), so no encode outlives its worker. Resolves with stdout on exit 0, else a ProcessError.
 */
export async function runProcess(
  command: string,
  args: readonly string[],
  options: RunProcessOptions = {},
): Promise<{ stdout: string }> {
  const printable = formatCommand(command, args);
  options.logger?.debug({ command: printable }, 'spawn');
  const killGraceMs = options.killGraceMs ?? 3000;
  // Messages name the program, not its path: they reach task reasons, which never show server paths.
  const name = path.basename(command);
  const launch =
    options.tiedToParent === false
      ? { command, args: [...args], viaSetpriv: false }
      : await launchTiedToParent(command, args);

  return new Promise<{ stdout: string }>((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(new ProcessError('cancelled before start', 'aborted', printable, null, null, '', name));
      return;
    }
    const child = spawn(launch.command, launch.args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      cwd: options.cwd,
      env: options.tempDir === undefined ? undefined : { ...process.env, TMPDIR: options.tempDir },
      shell: false,
    });
    let stdout = '';
    let stderrTail = '';
    /** The stderr line being written, for `failOnStderr` (capped: a line that long is no error message). */
    let stderrLine = '';
    let stopReason: ProcessFailureKind | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    let idleTimer: NodeJS.Timeout | undefined;
    let settled = false;

    const killGroup = (sig: NodeJS.Signals) => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, sig);
      } catch {
        // The group is already gone.
      }
    };
    const stop = (reason: ProcessFailureKind) => {
      if (stopReason || settled) return;
      stopReason = reason;
      killGroup('SIGTERM');
      killTimer = setTimeout(() => killGroup('SIGKILL'), killGraceMs);
      killTimer.unref();
    };
    const armIdle = () => {
      if (!options.idleTimeoutMs) return;
      if (idleTimer) clearTimeout(idleTimer);
      idleTimer = setTimeout(() => stop('idle'), options.idleTimeoutMs);
    };
    const onAbort = () => stop('aborted');
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const timeoutTimer = options.timeoutMs ? setTimeout(() => stop('timeout'), options.timeoutMs) : undefined;
    armIdle();

    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      armIdle();
      if (options.onStdoutLine) options.onStdoutLine(line);
      else if (stdout.length + line.length < MAX_STDOUT_CHARS) stdout += line + '\n';
      // A JSON document cut short would fail to parse with a misleading error, or worse, parse.
      else stop('output');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      armIdle();
      const text = chunk.toString('utf8');
      stderrTail = (stderrTail + text).slice(-STDERR_TAIL_BYTES);
      if (!options.failOnStderr) return;
      const lines = (stderrLine + text).split('\n');
      stderrLine = lines.pop()!.slice(-4096);
      if (lines.some((line) => options.failOnStderr!.test(line))) stop('fatal');
    });

    const finish = (err: ProcessError | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timeoutTimer);
      clearTimeout(idleTimer);
      clearTimeout(killTimer);
      options.signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve({ stdout });
    };

    child.on('error', (err) => {
      finish(
        new ProcessError(`cannot start ${command}: ${err.message}`, 'spawn', printable, null, null, '', name),
      );
    });
    child.on('close', (code, sig) => {
      if (stopReason) {
        // Make sure nothing the process started outlives it.
        killGroup('SIGKILL');
        const what = {
          aborted: 'was cancelled',
          timeout: `ran past its time limit of ${Math.round((options.timeoutMs ?? 0) / 1000)} s`,
          idle: `made no progress for ${Math.round((options.idleTimeoutMs ?? 0) / 1000)} s`,
          output: `printed more than ${MAX_STDOUT_CHARS / 1024 / 1024} MB`,
          fatal: 'reported an error',
          exit: 'stopped',
          spawn: 'stopped',
        }[stopReason];
        // Stopped for what it said: the signal is this process's, not the cause.
        const [exitCode, exitSignal] = stopReason === 'fatal' ? [null, null] : [code, sig];
        finish(
          new ProcessError(
            `${name} ${what}`,
            stopReason,
            printable,
            exitCode,
            exitSignal,
            redactUrls(stderrTail),
            name,
          ),
        );
      } else if (code === 0) {
        finish(undefined);
      } else {
        // What a direct spawn reports as an 'error' event (ENOENT, EACCES), setpriv says on stderr.
        const notStarted = launch.viaSetpriv ? setprivExecFailure(code, stderrTail) : undefined;
        const how = sig ? `was killed by ${sig}` : `exited with code ${code}`;
        finish(
          notStarted
            ? new ProcessError(
                `cannot start ${command}: ${notStarted}`,
                'spawn',
                printable,
                code,
                sig,
                '',
                name,
              )
            : new ProcessError(`${name} ${how}`, 'exit', printable, code, sig, redactUrls(stderrTail), name),
        );
      }
    });
  });
}
