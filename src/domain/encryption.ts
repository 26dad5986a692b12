/**
 * Raw-key encryption of a package (CENC `cenc` or `cbcs`), as a request or ENCRYPTION_KEYS_FILE gives it.
 * Keys are secrets: no message here ever quotes a value, only the field it came in.
 */

import type { Domain } from './schemas/wire.js';

export const encryptionSchemes = ['cbcs', 'cenc'] as const;
export type EncryptionScheme = (typeof encryptionSchemes)[number];

export const protectionSystems = ['widevine', 'playready', 'fairplay', 'common'] as const;
export type ProtectionSystem = (typeof protectionSystems)[number];

/** Which streams a key of `keys` encrypts: the audio, or the video renditions by height (see keyLabelFor). */
export const keyLabels = ['audio', 'sd', 'hd', 'uhd'] as const;
export type KeyLabel = (typeof keyLabels)[number];

/** The label of the one key given as `key_id`/`key`, which encrypts every stream no label claims. */
export const DEFAULT_KEY_LABEL = 'default';

export interface LabelledKey {
  label: KeyLabel;
  key_id: string;
  /** Absent once the task has ended: the stored request keeps no key (see withoutKeys). */
  key?: string;
}

/** The `encryption` object of a request (or of ENCRYPTION_KEYS_FILE) on the wire; parseEncryption checks it. */
export interface EncryptionRequest {
  scheme?: EncryptionScheme;
  key_id?: string;
  /** Absent once the task has ended (see withoutKeys), or when the server's keys are used. */
  key?: string;
  iv?: string;
  keys?: LabelledKey[];
  protection_systems?: ProtectionSystem[];
  hls_key_uri?: string;
}

/** What the packager is given: every key resolved, the scheme and systems defaulted. */
export interface EncryptionSpec {
  scheme: EncryptionScheme;
  /** `default` first when given; at most one per label. */
  keys: { label: KeyLabel | typeof DEFAULT_KEY_LABEL; keyId: string; key: string }[];
  iv?: string;
  systems: ProtectionSystem[];
  hlsKeyUri?: string;
}

/** The request's `encryption` as the domain holds it (camelCase). */
export type EncryptionOptions = Domain<EncryptionRequest>;

/** What the status document's `output.encryption` says, on the wire: never a key. */
export interface EncryptionOutput {
  scheme: EncryptionScheme;
  key_ids: { label: KeyLabel | typeof DEFAULT_KEY_LABEL; key_id: string }[];
  protection_systems: ProtectionSystem[];
  hls_key_uri?: string;
}

/** `output.encryption` as the domain holds it. */
export type EncryptionDescription = Domain<EncryptionOutput>;

/** Bad encryption input: `field` names where (`encryption.keys[1].key`), the message never quotes a value. */
export class EncryptionInputError extends Error {
  override name = 'EncryptionInputError';
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(`${field} ${reason}`);
  }
}

const HEX_128 = /^[0-9a-fA-F]{32}$/;
const HEX_64_OR_128 = /^(?:[0-9a-fA-F]{16}|[0-9a-fA-F]{32})$/;
const MAX_URI_LENGTH = 2048;

/**
 * Checks an `encryption` object (what JSON gave: anything) and returns it camelCased, hex in lower case.
 * `where` prefixes the field names (`encryption`, or the keys file's setting name).
 */
export function parseEncryption(raw: unknown, where = 'encryption'): EncryptionOptions {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new EncryptionInputError(where, 'must be an object');
  }
  const input = raw as Record<string, unknown>;
  const known = new Set(['scheme', 'key_id', 'key', 'iv', 'keys', 'protection_systems', 'hls_key_uri']);
  for (const name of Object.keys(input)) {
    if (!known.has(name)) throw new EncryptionInputError(`${where}.${name}`, 'is not a known field');
  }
  const out: EncryptionOptions = {};
  if (input.scheme !== undefined) {
    if (!encryptionSchemes.includes(input.scheme as EncryptionScheme)) {
      throw new EncryptionInputError(`${where}.scheme`, `must be one of ${encryptionSchemes.join(', ')}`);
    }
    out.scheme = input.scheme as EncryptionScheme;
  }
  const hex = (value: unknown, field: string, pattern = HEX_128, what = '32 hex digits (16 bytes)') => {
    if (typeof value !== 'string' || !pattern.test(value)) {
      throw new EncryptionInputError(field, `must be ${what}`);
    }
    return value.toLowerCase();
  };
  if (input.key !== undefined && input.key_id === undefined) {
    throw new EncryptionInputError(`${where}.key_id`, 'must be given with key');
  }
  if (input.key_id !== undefined) {
    out.keyId = hex(input.key_id, `${where}.key_id`);
    if (input.key === undefined) throw new EncryptionInputError(`${where}.key`, 'must be given with key_id');
    out.key = hex(input.key, `${where}.key`);
  }
  if (input.iv !== undefined) {
    out.iv = hex(input.iv, `${where}.iv`, HEX_64_OR_128, '16 or 32 hex digits (8 or 16 bytes)');
  }
  if (input.keys !== undefined) {
    if (!Array.isArray(input.keys) || input.keys.length < 1 || input.keys.length > keyLabels.length) {
      throw new EncryptionInputError(`${where}.keys`, `must be a list of 1 to ${keyLabels.length} keys`);
    }
    const seen = new Set<string>();
    out.keys = input.keys.map((item: unknown, i) => {
      const field = `${where}.keys[${i}]`;
      if (item === null || typeof item !== 'object' || Array.isArray(item)) {
        throw new EncryptionInputError(field, 'must be an object {label, key_id, key}');
      }
      const k = item as Record<string, unknown>;
      for (const name of Object.keys(k)) {
        if (!['label', 'key_id', 'key'].includes(name)) {
          throw new EncryptionInputError(`${field}.${name}`, 'is not a known field');
        }
      }
      if (!keyLabels.includes(k.label as KeyLabel)) {
        throw new EncryptionInputError(`${field}.label`, `must be one of ${keyLabels.join(', ')}`);
      }
      const label = k.label as KeyLabel;
      if (seen.has(label)) throw new EncryptionInputError(`${field}.label`, 'names a label given before');
      seen.add(label);
      if (k.key_id === undefined) throw new EncryptionInputError(`${field}.key_id`, 'is required');
      if (k.key === undefined) throw new EncryptionInputError(`${field}.key`, 'is required');
      return { label, keyId: hex(k.key_id, `${field}.key_id`), key: hex(k.key, `${field}.key`) };
    });
  }
  if (input.protection_systems !== undefined) {
    const list = input.protection_systems;
    if (!Array.isArray(list) || list.length > protectionSystems.length) {
      throw new EncryptionInputError(`${where}.protection_systems`, 'must be a list of protection systems');
    }
    list.forEach((s: unknown, i) => {
      if (!protectionSystems.includes(s as ProtectionSystem)) {
        throw new EncryptionInputError(
          `${where}.protection_systems[${i}]`,
          `must be one of ${protectionSystems.join(', ')}`,
        );
      }
    });
    out.protectionSystems = [...new Set(list as ProtectionSystem[])];
  }
  if (input.hls_key_uri !== undefined) {
    out.hlsKeyUri = checkKeyUri(input.hls_key_uri, `${where}.hls_key_uri`);
  }
  checkConsistency(out, where);
  return out;
}

/** A key URI that names where a player gets the key (skd://, https://), never one that holds it. */
function checkKeyUri(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_URI_LENGTH) {
    throw new EncryptionInputError(field, `must be a URI of at most ${MAX_URI_LENGTH} characters`);
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(value)?.[1]?.toLowerCase();
  if (scheme !== 'skd' && scheme !== 'https' && scheme !== 'http') {
    throw new EncryptionInputError(
      field,
      'must be an skd://, https:// or http:// URI where players ask for the key (a data: URI would carry it)',
    );
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0020"\u007f]/.test(value)) {
    throw new EncryptionInputError(field, 'must not hold spaces, quotes or control characters');
  }
  return value;
}

/** What holds across fields: distinct keys and IDs, and a key URI that does not spell a key. */
function checkConsistency(e: EncryptionOptions, where: string): void {
  const all = [
    ...(e.keyId && e.key ? [{ field: where, keyId: e.keyId, key: e.key }] : []),
    ...(e.keys ?? []).map((k, i) => ({ field: `${where}.keys[${i}]`, keyId: k.keyId, key: k.key! })),
  ];
  const byId = new Map<string, string>();
  const keyIds = new Set(all.map((k) => k.keyId));
  for (const k of all) {
    // The status document shows key IDs: a key that equals one (its own or another's) would be shown.
    if (keyIds.has(k.key)) throw new EncryptionInputError(`${k.field}.key`, 'must differ from every key_id');
    const other = byId.get(k.keyId);
    if (other !== undefined && other !== k.key) {
      throw new EncryptionInputError(`${k.field}.key_id`, 'is given before with another key');
    }
    byId.set(k.keyId, k.key);
    if (e.hlsKeyUri && keySpellings(k.key).some((s) => e.hlsKeyUri!.includes(s))) {
      throw new EncryptionInputError(`${where}.hls_key_uri`, 'must not carry a key');
    }
  }
  if (e.iv && e.scheme !== 'cenc' && e.iv.length !== 32) {
    throw new EncryptionInputError(`${where}.iv`, 'must be 32 hex digits (16 bytes) with the cbcs scheme');
  }
  if (e.protectionSystems?.includes('fairplay') && !e.hlsKeyUri) {
    throw new EncryptionInputError(
      `${where}.hls_key_uri`,
      'is required with fairplay: the skd:// URI that players send to the FairPlay key server',
    );
  }
}

/**
 * The request's encryption with its keys taken from `serverKeys` (ENCRYPTION_KEYS_FILE) when it names none;
 * the request's scheme, systems and key URI win over the file's. Undefined: no encryption.
 */
export function resolveEncryption(
  request: EncryptionOptions | undefined,
  serverKeys?: EncryptionOptions,
): EncryptionSpec | undefined {
  if (!request) return undefined;
  const ownKeys = request.keyId !== undefined || request.keys !== undefined;
  if (!ownKeys && !serverKeys) {
    throw new EncryptionInputError(
      'encryption.key_id',
      'and key (or keys) are required: this service has no ENCRYPTION_KEYS_FILE to take them from',
    );
  }
  const source = ownKeys ? request : serverKeys!;
  const keys: EncryptionSpec['keys'] = [];
  if (source.keyId !== undefined) {
    if (source.key === undefined) throw new EncryptionInputError('encryption.key', 'is no longer stored');
    keys.push({ label: DEFAULT_KEY_LABEL, keyId: source.keyId, key: source.key });
  }
  for (const k of source.keys ?? []) {
    if (k.key === undefined) throw new EncryptionInputError('encryption.keys', 'are no longer stored');
    keys.push({ label: k.label, keyId: k.keyId, key: k.key });
  }
  const merged = { ...serverKeys, ...stripUndefined(request) };
  const spec: EncryptionSpec = {
    scheme: merged.scheme ?? 'cbcs',
    keys,
    systems: merged.protectionSystems?.length ? merged.protectionSystems : ['common'],
  };
  const iv = ownKeys ? request.iv : (request.iv ?? serverKeys?.iv);
  if (iv) spec.iv = iv;
  if (merged.hlsKeyUri) spec.hlsKeyUri = merged.hlsKeyUri;
  // Checked again as merged: the file's fairplay with the request's cbcs IV, and so on.
  checkConsistency(
    {
      scheme: spec.scheme,
      iv: spec.iv,
      protectionSystems: spec.systems,
      hlsKeyUri: spec.hlsKeyUri,
      keys: keys.map((k) => ({ label: 'audio', keyId: k.keyId, key: k.key })),
    },
    'encryption',
  );
  return spec;
}

/** Why a package cannot be made with this encryption and these formats, or undefined when it can. */
export function formatConflict(spec: EncryptionSpec, formats: readonly string[]): string | undefined {
  if (spec.scheme === 'cenc' && formats.includes('hls')) {
    return (
      'encryption.scheme "cenc" cannot be used with HLS: HLS players (Safari, FairPlay, hls.js) decrypt ' +
      'only cbcs (SAMPLE-AES). Use "cbcs", which every current browser plays in DASH too, or ask for ' +
      '"formats": ["dash"]'
    );
  }
  return undefined;
}

/** The key label of a stream: the audio, or a video rendition by its short side (sd < 720 ≤ hd < 2160 ≤ uhd). */
export function keyLabelFor(stream: 'audio' | { width: number; height: number }): KeyLabel {
  if (stream === 'audio') return 'audio';
  const short = Math.min(stream.width, stream.height);
  return short < 720 ? 'sd' : short < 2160 ? 'hd' : 'uhd';
}

/** The key that encrypts streams of `label`: its own, else the default one; undefined when neither is given. */
export function keyFor(spec: EncryptionSpec, label: KeyLabel): EncryptionSpec['keys'][number] | undefined {
  return spec.keys.find((k) => k.label === label) ?? spec.keys.find((k) => k.label === DEFAULT_KEY_LABEL);
}

/** The status document's account of an encryption: scheme, key IDs by label, systems, key URI. */
export function describeEncryption(spec: EncryptionSpec): EncryptionDescription {
  return {
    scheme: spec.scheme,
    keyIds: spec.keys.map((k) => ({ label: k.label, keyId: k.keyId })),
    protectionSystems: spec.systems,
    ...(spec.hlsKeyUri ? { hlsKeyUri: spec.hlsKeyUri } : {}),
  };
}

/** A request's encryption as the status document's `options` show it: everything but the keys and the IV. */
export function publicEncryptionOptions(e: EncryptionOptions): Record<string, unknown> {
  const { key: _k, iv: _iv, keys, ...rest } = e;
  return {
    ...rest,
    ...(keys ? { keys: keys.map(({ label, keyId }) => ({ label, keyId })) } : {}),
  };
}

/** The encryption without its keys, as a task's record keeps it once the task has ended. */
export function withoutKeys(e: EncryptionOptions): EncryptionOptions {
  const { key: _k, keys, ...rest } = e;
  return { ...rest, ...(keys ? { keys: keys.map(({ label, keyId }) => ({ label, keyId })) } : {}) };
}

/** A key as it may be written: hex in either case, base64 and base64url (with or without padding). */
export function keySpellings(hex: string): string[] {
  const bytes = Buffer.from(hex, 'hex');
  const b64 = bytes.toString('base64');
  return [hex.toLowerCase(), hex.toUpperCase(), b64, b64.replace(/=+$/, ''), bytes.toString('base64url')];
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
