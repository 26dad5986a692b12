import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { brotliCompress, constants, gzip } from 'node:zlib';
import { build } from 'esbuild';

const webDir = path.dirname(fileURLToPath(import.meta.url));

/** What the page loads: compressed once here, at build time, rather than on every request. */
const compressedFiles = ['app.js', 'index.html', 'styles.css'];

/**
 * Writes `<file>.br` (Brotli, best) and `<file>.gz` (gzip, best) beside each file the page loads; the API
 * serves whichever the browser accepts (@fastify/static's preCompressed). The script is mostly Shaka Player:
 * about 720 KB as is, a quarter of that compressed.
 */
async function writeCompressed(outDir: string): Promise<void> {
  await Promise.all(
    compressedFiles.map(async (f) => {
      const file = path.join(outDir, f);
      const raw = await readFile(file);
      const br = await promisify(brotliCompress)(raw, {
        params: {
          [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
          [constants.BROTLI_PARAM_SIZE_HINT]: raw.length,
        },
      });
      const gz = await promisify(gzip)(raw, { level: constants.Z_BEST_COMPRESSION });
      await Promise.all([writeFile(`${file}.br`, br), writeFile(`${file}.gz`, gz)]);
    }),
  );
}

/**
 * Bundles the dashboard (web/src, with Shaka Player from node_modules) into one minified script and copies
 * the page and its style beside it, each with its compressed forms. Output: dist/web at the package root,
 * served by the API at `/`.
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
  await writeCompressed(outDir);
  return outDir;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = await buildDashboard();
  console.log(`dashboard built into ${path.relative(process.cwd(), out) || '.'}`);
}
