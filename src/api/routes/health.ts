import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import type { Services } from '../../app/services.js';
import { checkTools, toolNeedsFor } from '../../pipeline/tools.js';
import { configuredCodecs } from '../../jobs/encode-settings.js';
import { freeBytes } from '../../jobs/disk-space.js';
import { hasApiKey } from '../api-key.js';

/** How long /readyz waits for one check: probes (Kubernetes' default timeout is 1 s) want an answer. */
const READINESS_CHECK_TIMEOUT_MS = 3_000;

/** How long a successful tool check is trusted: running four programs on every probe would be wasteful. */
const TOOLS_CHECK_TTL_MS = 60_000;

export const healthRoutes: FastifyPluginAsync<{ services: Services }> = async (app, { services }) => {
  app.get(
    '/healthz',
    {
      schema: {
        tags: ['operations'],
        summary: 'Liveness',
        // Public even when API_KEY is set: probes and scrapers carry no key.
        security: [],
        description: 'Answers 200 while the process runs. Not behind the API key.',
        response: {
          200: {
            type: 'object',
            required: ['status'],
            properties: { status: { type: 'string', enum: ['ok'] } },
          },
        },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  // Each check answers within READINESS_CHECK_TIMEOUT_MS (a silent store would hold the probe for the S3
  // client's minutes of retries); a check still running is shared by the probes that come meanwhile.
  const inFlight = new Map<string, Promise<string>>();
  const checkWithin = async (name: string, fn: () => Promise<unknown>): Promise<string> => {
    let check = inFlight.get(name);
    if (!check) {
      check = fn().then(
        () => 'ok',
        (err: unknown) => (err as Error).message.slice(0, 200),
      );
      inFlight.set(name, check);
      void check.finally(() => inFlight.delete(name));
    }
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<string>((resolve) => {
      timer = setTimeout(
        () => resolve(`no answer within ${READINESS_CHECK_TIMEOUT_MS / 1000} s`),
        READINESS_CHECK_TIMEOUT_MS,
      );
    });
    try {
      return await Promise.race([check, late]);
    } finally {
      clearTimeout(timer);
    }
  };

  const hasKey = services.config.apiKey ? hasApiKey(services.config.apiKey) : undefined;
  let toolsCheckedAt = 0;
  const checkToolsCached = async () => {
    if (Date.now() - toolsCheckedAt < TOOLS_CHECK_TTL_MS) return;
    await checkTools(
      services.tools,
      toolNeedsFor(services.config.encode.scaler, configuredCodecs(services.config)),
    );
    toolsCheckedAt = Date.now();
  };
  // The work directory, and the SQLite queue's when it is on another disk (a full one refuses every submit).
  const { queue: queueSettings } = services.config;
  const disks: [string, string][] = [['the work directory', services.config.workDir]];
  if (queueSettings.kind === 'sqlite') disks.push(["the queue's database", path.dirname(queueSettings.path)]);
  const checkDisk = async () => {
    const seen = new Set<number>();
    for (const [what, dir] of disks) {
      // One file system is checked once (the database is in STATE_DIR, the work directory too by default).
      const { dev } = await stat(dir);
      if (seen.has(dev)) continue;
      seen.add(dev);
      const free = await freeBytes(dir);
      if (free < services.config.minFreeDiskBytes) {
        throw new Error(
          `${Math.round(free / 2 ** 20)} MiB free in ${what}, below MIN_FREE_DISK_MB=${Math.round(services.config.minFreeDiskBytes / 2 ** 20)}`,
        );
      }
    }
  };

  const readiness = {
    type: 'object',
    required: ['status', 'checks'],
    properties: {
      status: { type: 'string', enum: ['ready', 'not_ready'] },
      checks: {
        type: 'object',
        description: '"ok", or what is wrong, per check.',
        properties: {
          queue: { type: 'string' },
          input_storage: { type: 'string' },
          output_storage: { type: 'string' },
          tools: {
            type: 'string',
            description:
              'FFmpeg (with the encoders of VIDEO_CODECS and the profiles’ codecs), ffprobe, Shaka Packager and xmllint run.',
          },
          disk: {
            type: 'string',
            description:
              'Free space in WORK_DIR (and in STATE_DIR with the SQLite queue) is at least MIN_FREE_DISK_MB.',
          },
        },
      },
    },
  } as const;
  app.get(
    '/readyz',
    {
      schema: {
        tags: ['operations'],
        summary: 'Readiness',
        // Public even when API_KEY is set: probes and scrapers carry no key.
        security: [],
        description:
          'Answers 200 when the queue and both storages are reachable, the media tools run and the work ' +
          'directory has at least MIN_FREE_DISK_MB free; 503 with the failing checks otherwise. Not behind ' +
          'the API key; with API_KEY set, the reasons of failing checks are given only with the key.',
        response: { 200: readiness, 503: readiness },
      },
    },
    async (req, reply) => {
      const checks: Record<string, string> = {};
      const run = async (name: string, fn: () => Promise<unknown>) => {
        checks[name] = await checkWithin(name, fn);
      };
      await Promise.all([
        run('queue', () => services.queue.check()),
        run('input_storage', () => services.input.check()),
        run('output_storage', () => services.output.check()),
        run('tools', checkToolsCached),
        run('disk', checkDisk),
      ]);
      const ready = Object.values(checks).every((v) => v === 'ok');
      // Probes carry no key: with API_KEY set, what failed is named for them but not why (the reasons name
      // directories, buckets and hosts), and in full for a request with the key.
      if (hasKey && !hasKey(req)) {
        for (const [name, result] of Object.entries(checks)) {
          if (result !== 'ok') checks[name] = 'failing (the reason is shown with X-API-Key)';
        }
      }
      return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks });
    },
  );
};
