import { spawn, type ChildProcess } from 'node:child_process';

export interface Spawned {
  child: ChildProcess;
  /** Resolves when the process exits 0; rejects with the command and the tail of stderr otherwise. */
  done: Promise<void>;
  stderrTail(): string;
}

/**
 * Starts a program with an argument array (no shell) and stdin closed. stdout goes to `onStdoutLine` or is
 * drained. The bench spawns directly (not through src/process) because it needs to pass an environment.
 */
export function start(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; onStdoutLine?: (line: string) => void } = {},
): Spawned {
  const child = spawn(command, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: options.env ?? process.env,
    cwd: options.cwd,
  });
  let stderr = '';
  let partial = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    if (!options.onStdoutLine) return;
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) options.onStdoutLine(line);
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  const done = new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (code === 0) resolve();
      else
        reject(
          new Error(
            `${command} ${args.join(' ')} exited with ${code ?? signal}\n${stderr.split('\n').slice(-8).join('\n')}`,
          ),
        );
    });
  });
  return { child, done, stderrTail: () => stderr };
}

export function run(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<void> {
  return start(command, args, options).done;
}

/** Runs a program and returns its stderr (FFmpeg prints filter results there). */
export function runForStderr(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (c: string) => (stderr += c));
    child.once('error', reject);
    child.once('close', (code) =>
      code === 0
        ? resolve(stderr)
        : reject(new Error(`${command} exited with ${code}: ${stderr.slice(-2000)}`)),
    );
  });
}
