import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(fileURLToPath(import.meta.url), '../../..');

export interface LogLine {
  level: number;
  msg: string;
  taskId?: string;
  address?: string;
  [key: string]: unknown;
}

/** One real process of the service (`serve --no-worker` or `worker`), its JSON log lines kept in order. */
export interface ServiceProcess {
  name: string;
  child: ChildProcess;
  lines: LogLine[];
  /** Resolves with the first log line (already seen or to come) that matches. */
  waitFor(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Task ids this process logged with the given message. */
  tasks(msg: string): string[];
  /** SIGTERM, then SIGKILL after `timeoutMs`; resolves once it exited. */
  stop(timeoutMs?: number): Promise<void>;
  /** SIGKILL to the process and every process it started (as when its host or container dies). */
  kill(): Promise<void>;
  exited: Promise<number | null>;
}

/** Starts `node --import tsx src/cli/main.ts <args>` from the repository with exactly this environment. */
export function startProcess(name: string, args: string[], env: Record<string, string>): ServiceProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: LogLine[] = [];
  const waiters = new Set<() => void>();
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  createInterface({ input: child.stdout! }).on('line', (text) => {
    try {
      lines.push(JSON.parse(text) as LogLine);
    } catch {
      lines.push({ level: 30, msg: text });
    }
    for (const wake of waiters) wake();
  });
  if (process.env.DVC_TEST_ECHO) {
    child.stdout!.on('data', (c: Buffer) => process.stderr.write(`[${name}] ${c.toString()}`));
  }
  void exited.then(() => {
    for (const wake of waiters) wake();
  });

  const waitFor = (match: (line: LogLine) => boolean, timeoutMs = 30_000) =>
    new Promise<LogLine>((resolve, reject) => {
      const check = () => {
        const found = lines.find(match);
        if (found) {
          finish();
          resolve(found);
        } else if (child.exitCode !== null || child.signalCode !== null) {
          finish();
          reject(new Error(`${name} exited (${child.exitCode ?? child.signalCode}): ${stderr.slice(-1500)}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(
          new Error(`${name}: no matching log line within ${timeoutMs} ms; stderr: ${stderr.slice(-1500)}`),
        );
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });

  const stop = async (timeoutMs = 15_000) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    await exited;
    clearTimeout(timer);
  };

  const kill = async () => {
    const pids = [...descendants(child.pid!), child.pid!];
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    await exited;
  };

  return {
    name,
    child,
    lines,
    waitFor,
    tasks: (msg) => lines.filter((l) => l.msg === msg && l.taskId).map((l) => l.taskId!),
    stop,
    kill,
    exited,
  };
}

/** Every process below `pid`, read from /proc (FFmpeg runs in its own process group, so a group kill misses it). */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // The process ended while we looked.
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}
