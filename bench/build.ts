import { build } from 'esbuild';
import { mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(fileURLToPath(import.meta.url), '../..');

/**
 * Bundles the CLI from the current sources into bench/results/cli.mjs, so the bench times plain `node` start-up
 * (as `node dist/cli/main.js` would run) without tsx's compile step, and without touching the shared dist/.
 * Code splitting keeps the CLI's dynamic imports lazy, as they are in dist/: `convert` does not load the server,
 * the queues or the AWS SDK (a single-file bundle would load them all at start-up, ≈0.4 s of CPU).
 */
export async function buildCli(): Promise<string> {
  // Two directories below the root, like dist/cli/main.js: modules that find files relative to themselves
  // (../../package.json, ../../schemas) find them from the bundle and its chunks too.
  const outdir = path.join(root, 'bench', 'results');
  // Git-ignored, so absent from a fresh clone.
  await mkdir(outdir, { recursive: true });
  for (const old of await readdir(outdir)) {
    if (old.startsWith('cli-chunk-')) await rm(path.join(outdir, old));
  }
  await build({
    entryPoints: { cli: path.join(root, 'src/cli/main.ts') },
    outdir,
    chunkNames: 'cli-chunk-[hash]',
    outExtension: { '.js': '.mjs' },
    bundle: true,
    splitting: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    logLevel: 'warning',
  });
  return path.join(outdir, 'cli.mjs');
}
