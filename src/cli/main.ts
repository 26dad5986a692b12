#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config/config.js';
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
        import('../logger.js'),
        import('../server.js'),
      ]);
      const logger = createLogger(config.logLevel);
      const running = await startService(config, logger, {
        api: command === 'serve',
        worker: command === 'worker' || !values['no-worker'],
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
