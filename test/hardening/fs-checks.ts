import { readdir } from 'node:fs/promises';
import path from 'node:path';

/** Every file and directory below `root`, as `/`-separated relative paths. */
export async function snapshotTree(root: string): Promise<Set<string>> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return new Set(
    entries.map((e) => path.relative(root, path.join(e.parentPath, e.name)).split(path.sep).join('/')),
  );
}

/** Paths present in `after` but not in `before` that lie outside every one of the `allowed` directories. */
export function newPathsOutside(before: Set<string>, after: Set<string>, allowed: string[]): string[] {
  return [...after].filter(
    (p) => !before.has(p) && !allowed.some((dir) => p === dir || p.startsWith(`${dir}/`)),
  );
}

/** Entries (two levels deep) of each directory whose name contains `marker`, skipping `except`. */
export async function findMarked(dirs: string[], marker: string, except: string[] = []): Promise<string[]> {
  const found: string[] = [];
  for (const dir of dirs) {
    const top = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of top) {
      const full = path.join(dir, e.name);
      if (except.some((x) => full === x || full.startsWith(x + path.sep))) continue;
      if (e.name.includes(marker)) found.push(full);
      if (e.isDirectory()) {
        for (const name of await readdir(full).catch(() => [] as string[])) {
          if (name.includes(marker)) found.push(path.join(full, name));
        }
      }
    }
  }
  return found;
}
