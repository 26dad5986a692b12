import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat times; 100 on every Linux this runs on (getconf CLK_TCK). */
const TICKS_PER_SECOND = 100;

export interface CpuTimes {
  /** User + system seconds of the process itself. */
  self: number;
  /** User + system seconds of its children that have exited and been waited for (their descendants too). */
  children: number;
}

/**
 * CPU times from /proc/<pid>/stat. `children` (cutime + cstime) only grows once a child has been reaped, so a
 * delta taken around a finished run counts every process of that run: this is getrusage(RUSAGE_CHILDREN),
 * which Node does not expose.
 */
export function cpuTimes(pid: number | 'self' = 'self'): CpuTimes {
  const fields = statFields(pid);
  const n = (i: number) => Number(fields[i]) / TICKS_PER_SECOND;
  // Fields after the command name, counted from field 3 (state) at index 0: utime 14, stime 15, cutime 16, cstime 17.
  return { self: n(14 - 3) + n(15 - 3), children: n(16 - 3) + n(17 - 3) };
}

function statFields(pid: number | 'self'): string[] {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name is in parentheses and may itself hold spaces or parentheses.
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
}

/** Direct children of a process, from every thread's children list. */
export function childrenOf(pid: number | 'self'): number[] {
  const out: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (text) out.push(...text.split(' ').map(Number));
    }
  } catch {
    // The process has exited.
  }
  return out;
}

/** Every descendant of a process (not the process itself). */
export function descendantsOf(pid: number | 'self'): number[] {
  const all: number[] = [];
  const stack = childrenOf(pid);
  while (stack.length) {
    const p = stack.pop()!;
    all.push(p);
    stack.push(...childrenOf(p));
  }
  return all;
}

export interface MemorySample {
  pid: number;
  /** Short program name: node, ffmpeg, ffprobe, packager… */
  name: string;
  /** Resident set now, bytes. */
  rss: number;
  /** Peak resident set of the process so far (VmHWM), bytes. */
  peak: number;
}

export function memoryOf(pid: number): MemorySample | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) =>
      Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
    const name = /^Name:\s+(.*)$/m.exec(status)?.[1]?.trim() ?? '?';
    return { pid, name: programName(name), rss: kb('VmRSS'), peak: kb('VmHWM') };
  } catch {
    return undefined;
  }
}

/** The kernel truncates names to 15 characters and the packager binary is named per platform. */
function programName(comm: string): string {
  if (comm.startsWith('packager')) return 'packager';
  return comm;
}

/**
 * Seconds every core of the machine spent busy (user, nice, system, irq, softirq, steal), from /proc/stat: the
 * delta around a run, less its own processes' CPU, is what everything else took meanwhile.
 */
export function machineBusySeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const ticks = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: all but idle and iowait.
  const busy = [0, 1, 2, 5, 6, 7].reduce((sum, i) => sum + (ticks[i] ?? 0), 0);
  return busy / TICKS_PER_SECOND;
}
