import { build } from 'esbuild';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(fileURLToPath(import.meta.url), '../..');

/**
 * Bundles the CLI from the current sources into bench/results/cli.mjs, so the bench times plain `node` start-up
 * (as `node dist/cli/main.js` would run) without tsx's compile step, and without touching the shared dist/.
 */
export async function buildCli(): Promise<string> {
  // Two directories below the root, like dist/cli/main.js: modules that find files relative to themselves
  // (../../package.json, ../../schemas) find them from the bundle too.
  const outfile = path.join(root, 'bench', 'results', 'cli.mjs');
  await build({
    entryPoints: [path.join(root, 'src/cli/main.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    logLevel: 'warning',
  });
  return outfile;
}
