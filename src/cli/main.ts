#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type Config } from '../config/config.js';
import { convertUsage } from './convert-args.js';
import { startProbe } from './early-probe.js';

const usage = `dash-video-converter: turns videos into adaptive streams (MPEG-DASH and HLS).

Usage:
  dash-video-converter serve [--no-worker]   Start the HTTP API (with an in-process worker unless --no-worker)
  dash-video-converter worker                Run workers only (WORKER_CONCURRENCY tasks at once)
${convertUsage}

Settings come from the environment (see .env.example and the README).`;

/** Time after the grace period for handing running tasks back and closing connections before a stop exits. */
const SHUTDOWN_HANDBACK_MS = 15_000;

/**
 * A start-up failure that a setting explains (the port taken, a directory that is a file), as the setting's
 * problem: the operator reads which variable to change, not Node's error code.
 */
function startupProblem(err: NodeJS.ErrnoException, config: Config): ConfigError | undefined {
  if (err.code === 'EADDRINUSE' || err.code === 'EADDRNOTAVAIL' || err.code === 'EACCES') {
    if (err.syscall === 'listen' || err.syscall === 'bind') {
      const why = {
        EADDRINUSE: 'is in use',
        EADDRNOTAVAIL: 'is not an address of this host',
        EACCES: 'needs privileges',
      };
      return new ConfigError([
        `HOST=${config.host} PORT=${config.port}: the address ${why[err.code]} (${err.message})`,
      ]);
    }
  }
  if (err.code === 'ENOTFOUND' && err.syscall === 'getaddrinfo') {
    return new ConfigError([`HOST=${config.host} is not a name or address of this host`]);
  }
  const dirs: [string, string | undefined][] = [
    ['STATE_DIR', config.stateDir],
    ['WORK_DIR', config.workDir],
    ['INPUT_DIR', config.input.kind === 'local' ? config.input.root : undefined],
    ['OUTPUT_DIR', config.output.kind === 'local' ? config.output.root : undefined],
  ];
  const file = err.path;
  if (!file || !err.code) return undefined;
  // WORK_DIR lies inside STATE_DIR by default: a file on the way (ENOTDIR) is the outer directory's problem,
  // anything else the innermost one's.
  const outerFirst = err.code === 'ENOTDIR' ? 1 : -1;
  const setting = dirs
    .filter(([, dir]) => dir && (file === dir || file.startsWith(`${dir}/`)))
    .sort((a, b) => outerFirst * (a[1]!.length - b[1]!.length))[0];
  if (!setting) return undefined;
  const reason: Record<string, string> = {
    EEXIST: 'a file is in the way of the directory',
    ENOTDIR: 'a file is in the way of the directory',
    EACCES: 'permission denied',
    EPERM: 'permission denied',
    EROFS: 'read-only file system',
    ENOSPC: 'no space left',
  };
  return new ConfigError([`${setting[0]}=${setting[1]}: ${reason[err.code] ?? err.code} (${file})`]);
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (
    ['serve', 'worker', 'convert'].includes(command ?? '') &&
    rest.some((a) => a === '--help' || a === '-h')
  ) {
    console.log(usage);
    return 0;
  }
  switch (command) {
    case 'serve':
    case 'worker': {
      const { values } = parseArgs({
        args: rest,
        options: { 'no-worker': { type: 'boolean' } },
        strict: true,
      });
      const config = loadConfig();
      // Loaded here, not at the top: `convert` needs none of the server (Fastify, AWS SDK, BullMQ).
      const [{ createLogger }, { closeOnSignals, startService }] = await Promise.all([
        import('../process/logger.js'),
        import('../app/server.js'),
      ]);
      const logger = createLogger(config.logLevel);
      const running = await startService(config, logger, {
        api: command === 'serve',
        worker: command === 'worker' || !values['no-worker'],
      }).catch((err: unknown) => {
        throw startupProblem(err as NodeJS.ErrnoException, config) ?? err;
      });
      // The grace the running tasks get, then time to hand them back and close connections.
      closeOnSignals(running, logger, config.shutdownGraceMs + SHUTDOWN_HANDBACK_MS);
      return -1;
    }
    case 'convert': {
      // The input's probe is the first thing a conversion waits for: it runs while the pipeline's modules load.
      const started = startProbe(rest);
      const { runConvert } = await import('./convert-command.js');
      return runConvert(rest, started);
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(usage);
      return command === undefined ? 1 : 0;
    default:
      console.error(`unknown command "${command}"\n\n${usage}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof ConfigError) console.error(err.message);
    else console.error(err instanceof Error ? err.message : err);
    process.exitCode = err instanceof ConfigError ? 78 : 1;
  },
);
