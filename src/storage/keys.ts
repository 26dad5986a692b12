import { randomBytes } from 'node:crypto';
/** Longest key accepted, in bytes (S3's own limit is 1024). */
export const MAX_KEY_BYTES = 1024;
const MAX_SEGMENT_BYTES = 255;

/**
 * Bytes a package's prefix must leave for the keys below it: `/<task id>-<attempt>-<6 hex>/` (about 46) and
 * the longest relative path of a package, `video_2160p/playlist.m3u8` or a segment (under 30), with room.
 */
export const PACKAGE_KEY_RESERVE_BYTES = 96;

export class UnsafeKeyError extends Error {
  override name = 'UnsafeKeyError';
}

/**
 * Accepts only plain relative keys, which cannot leave the storage root on any backend, or throws an
 * UnsafeKeyError saying why; Unicode forms are kept as they are (docs/design-notes.md, "Storage keys").
 */
export function assertSafeKey(key: unknown, what = 'video_filename'): asserts key is string {
  if (typeof key !== 'string' || key.length === 0)
    throw new UnsafeKeyError(`${what} must be a non-empty string`);
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) {
    throw new UnsafeKeyError(`${what} is longer than ${MAX_KEY_BYTES} bytes`);
  }
  // Control characters (C0, DEL, C1), format characters (zero-width, bidi overrides), line separators.
  if (/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u.test(key)) {
    throw new UnsafeKeyError(`${what} contains control or invisible characters`);
  }
  if (key.includes('\\')) throw new UnsafeKeyError(`${what} must use / as separator, not \\`);
  if (key.startsWith('/')) throw new UnsafeKeyError(`${what} must be a relative key, not an absolute path`);
  for (const segment of key.split('/')) {
    if (segment === '' || segment === '.' || segment === '..') {
      throw new UnsafeKeyError(`${what} must not contain empty, "." or ".." path segments`);
    }
    if (Buffer.byteLength(segment) > MAX_SEGMENT_BYTES) {
      throw new UnsafeKeyError(`${what} has a path segment longer than ${MAX_SEGMENT_BYTES} bytes`);
    }
  }
}

/**
 * `videos/example.mp4` → `videos/example`: where the package of an input goes, below OUTPUT_PREFIX. A name
 * whose stem would be `.` or `..` (`..mp4`) keeps its whole name instead.
 */
export function outputPrefixFor(inputKey: string, basePrefix = ''): string {
  const lastSlash = inputKey.lastIndexOf('/');
  const dir = inputKey.slice(0, lastSlash + 1);
  const name = inputKey.slice(lastSlash + 1);
  const dot = name.lastIndexOf('.');
  const stem = dot > 0 && !/^\.+$/.test(name.slice(0, dot)) ? name.slice(0, dot) : name;
  const base = basePrefix.replace(/^\/+|\/+$/g, '');
  // Composed (NFC), as URLs and most tools spell names: the same package place whatever form the input had.
  return [base, `${dir}${stem}`.normalize('NFC')].filter(Boolean).join('/');
}

/**
 * A key as the path of a URL: each segment percent-encoded, so a name with a space, `#`, `?`, `+` or `%` is
 * fetched as itself (a raw `#` made the rest of the key a fragment, a raw `%20` another key).
 */
export function keyUrlPath(key: string): string {
  return joinKey(key)
    .split('/')
    .map((segment) => encodeURIComponent(segment))
    .join('/');
}

export function joinKey(...parts: string[]): string {
  return parts
    .map((p) => p.replace(/^\/+|\/+$/g, ''))
    .filter(Boolean)
    .join('/');
}

/**
 * A local write's temporary name, `<name>.<12 hex>.part`: only such names are partial files, since an upload
 * may well be called `recording.mp4.part` (Firefox's unfinished downloads) and is served like any other.
 */
export function partialFileName(finalPath: string): string {
  return `${finalPath}.${randomBytes(6).toString('hex')}.part`;
}

const partialSuffix = /\.[0-9a-f]{12}\.part$/;

export function isPartialFile(name: string): boolean {
  return partialSuffix.test(name);
}

/** What a partial file (`partialFileName`) is a write of: its name without the suffix. */
export function partialTarget(name: string): string {
  return name.replace(partialSuffix, '');
}
