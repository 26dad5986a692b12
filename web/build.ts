import { cp, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const webDir = path.dirname(fileURLToPath(import.meta.url));

/**
 * Bundles the dashboard (web/src, with Shaka Player from node_modules) into one minified script and copies
 * the page and its style beside it. Output: dist/web at the package root, served by the API at `/`.
 */
export async function buildDashboard(outDir = path.resolve(webDir, '../dist/web')): Promise<string> {
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  await build({
    entryPoints: [path.join(webDir, 'src/main.ts')],
    outfile: path.join(outDir, 'app.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2021'],
    minify: true,
    sourcemap: 'linked',
    // Maps point at node_modules and web/src instead of carrying every source (Shaka's would be megabytes).
    sourcesContent: false,
    legalComments: 'linked',
    logLevel: 'warning',
  });
  await Promise.all(['index.html', 'styles.css'].map((f) => cp(path.join(webDir, f), path.join(outDir, f))));
  return outDir;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = await buildDashboard();
  console.log(`dashboard built into ${path.relative(process.cwd(), out) || '.'}`);
}
