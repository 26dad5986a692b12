import { existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, realpath, rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { publishOrder } from '../jobs/publish.js';
import type { PackageDestination } from '../jobs/run-conversion.js';
import type { PackageResult } from '../pipeline/package.js';

/**
 * `convert`'s output directory as the runner's destination. With `force`, what the directory held goes when
 * the first of the new package arrives; what this run put there goes if it does not complete.
 */
export function directoryDestination({
  outDir,
  force,
}: {
  outDir: string;
  force: boolean;
}): PackageDestination {
  const existed = existsSync(outDir);
  let wrote = false;
  const makeRoom = async () => {
    if (force && !wrote) await rm(outDir, { recursive: true, force: true });
    wrote = true;
  };
  return {
    where: { storage: 'local', prefix: outDir },
    locate: (file) => ({ key: path.join(outDir, file) }),
    // The final package is moved where the work directory's file system allows, copied to another otherwise.
    copiesOnDiskOf: () => Promise.resolve(false),
    publishEarly: async (pkg) => {
      await makeRoom();
      await copyPackage(pkg, outDir);
    },
    publish: async (pkg) => {
      await makeRoom();
      await copyPackage(pkg, outDir, true);
    },
    withdraw: async () => {
      if (!wrote) return;
      await rm(outDir, { recursive: true, force: true });
      if (existed) await mkdir(outDir, { recursive: true });
    },
  };
}

/**
 * Why the output directory cannot take the package, if it cannot: a file in its place, or files of its own
 * (the package's would mix with them: an HLS master of an earlier run naming segments this one replaced).
 */
export async function outputProblem({
  outDir,
  force,
  input,
  workRoot,
}: {
  outDir: string;
  force: boolean;
  input: string;
  workRoot: string;
}): Promise<string | undefined> {
  // --force replaces the directory whole: never one that holds the input, the working directory or a home.
  const inside = (dir: string, file: string) =>
    file === dir || file.startsWith(dir.endsWith(path.sep) ? dir : dir + path.sep);
  if (force) {
    // By their real paths: a link to the input, or a path through a link, is the same file.
    const real = (p: string) => realpath(p).catch(() => p);
    const [dir, file, cwd, home, work] = await Promise.all(
      [outDir, input, process.cwd(), os.homedir(), workRoot].map(real),
    );
    if (inside(dir!, file!)) return 'holds the input: --force would delete it with the rest';
    if (inside(dir!, cwd!)) return 'holds the working directory: --force would delete it';
    if (inside(dir!, home!)) return 'holds the home directory: --force would delete it';
    // The package is made there: it would go before it could be moved into place.
    if (inside(dir!, work!)) return 'holds the temporary directory: --force would delete it';
  }
  let entries: string[];
  try {
    entries = await readdir(outDir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ENOTDIR') return 'a file is in the way: not a directory';
    return (err as Error).message;
  }
  if (entries.length > 0 && !force)
    return 'not empty: give a new or empty directory, or --force to replace what it holds';
  return undefined;
}

/**
 * Copies a package in, manifests last, so a player reading meanwhile (EARLY_MANIFEST) finds every segment.
 * `move` (the final package) renames on the same file system: the whole directory at once when it can.
 */
async function copyPackage(pkg: PackageResult, outDir: string, move = false): Promise<void> {
  if (move) {
    const whole = await renameWhole(pkg.dir, outDir);
    if (whole === 'moved') return;
    // Another file system: every file's rename would fail the same way before its copy.
    if (whole === 'other-filesystem') move = false;
  }
  for (const file of publishOrder(pkg.files).flat()) {
    const from = path.join(pkg.dir, file);
    const to = path.join(outDir, file);
    await mkdir(path.dirname(to), { recursive: true });
    if (move) {
      try {
        await rename(from, to);
        continue;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
      }
    }
    await copyFile(from, to);
  }
}

/** One rename of the whole package directory, when the output directory is absent or empty. */
async function renameWhole(from: string, to: string): Promise<'moved' | 'occupied' | 'other-filesystem'> {
  await mkdir(path.dirname(to), { recursive: true });
  try {
    await rename(from, to);
    return 'moved';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EXDEV') return 'other-filesystem';
    if (code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'ENOTDIR') return 'occupied';
    throw err;
  }
}
