import { randomUUID } from 'node:crypto';
import { assertSafeKey } from '../../storage/keys.js';

const MAX_NAME_BYTES = 120;

/**
 * A client's file name made safe as a key's last segment: base name only, NFC, letters, digits and `._-`
 * (else `_`), bounded with its extension kept; never empty, `.` or `..`.
 */
export function sanitiseFilename(raw: string): string {
  const base = raw.normalize('NFC').split(/[/\\]/).pop() ?? '';
  let name = base
    .replace(/[^\p{L}\p{N}._-]+/gu, '_')
    .replace(/_+/g, '_')
    .replace(/^[._]+/, '');
  if (!name || name === '.' || name === '..') name = 'video';
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) {
    const dot = name.lastIndexOf('.');
    const ext = dot > 0 && name.length - dot <= 10 ? name.slice(dot) : '';
    let stem = name.slice(0, name.length - ext.length);
    while (Buffer.byteLength(stem + ext) > MAX_NAME_BYTES) stem = [...stem].slice(0, -1).join('');
    name = stem + ext;
  }
  return name;
}

/** Where uploads go in the input storage. */
export const UPLOADS_DIR = 'uploads';

/** `uploads/<uuid>/<sanitised name>`: unique, so one upload never overwrites another. */
export function uploadKeyFor(filename: string): string {
  const key = `${UPLOADS_DIR}/${randomUUID()}/${sanitiseFilename(filename)}`;
  assertSafeKey(key, 'upload key');
  return key;
}

/** The browser's content type when it looks like one, else a neutral one (only used as object metadata). */
export function safeContentType(value: string | undefined): string {
  return value && /^[\w.+-]+\/[\w.+-]+$/.test(value) && value.length <= 100
    ? value.toLowerCase()
    : 'application/octet-stream';
}
