import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { TaskFailure } from '../domain/failures.js';
import {
  keyFor,
  keyLabelFor,
  keySpellings,
  type EncryptionSpec,
  type KeyLabel,
  type ProtectionSystem,
} from '../domain/encryption.js';

/** How Shaka Packager names the protection systems (`--protection_systems`). */
const packagerSystems: Record<ProtectionSystem, string> = {
  widevine: 'Widevine',
  playready: 'PlayReady',
  fairplay: 'FairPlay',
  common: 'CommonSystem',
};

/** Shaka Packager's DRM label of a key label: its own (AUDIO, SD, HD) and UHD, set on each stream. */
const drmLabels: Record<KeyLabel, string> = { audio: 'AUDIO', sd: 'SD', hd: 'HD', uhd: 'UHD' };

export interface PackagerEncryption {
  spec: EncryptionSpec;
  /** A private directory (the task's work directory, not the package's) for the key file. */
  keysDir: string;
}

/** The stream descriptor's field that picks a stream's key (the default key when its label has none). */
export function drmLabelField(stream: 'audio' | { width: number; height: number }): string {
  return `drm_label=${drmLabels[keyLabelFor(stream)]}`;
}

/** Refuses a plan with a stream that no key encrypts (per-label keys without a default key). */
export function assertEveryStreamHasAKey(
  spec: EncryptionSpec,
  streams: ('audio' | { name: string; width: number; height: number })[],
): void {
  for (const s of streams) {
    const label = keyLabelFor(s);
    if (!keyFor(spec, label)) {
      const what = s === 'audio' ? 'the audio' : `the rendition ${s.name}`;
      throw new TaskFailure(
        'invalid_input',
        `encryption.keys has no key for the label "${label}" (${what}) and no default key_id and key are given`,
      );
    }
  }
}

/**
 * The keys go in a `--flagfile` only this user reads, never on a command line any user reads in /proc;
 * returns the packager's arguments and the file's removal (scheme, systems, key URI are no secret).
 */
export async function encryptionArgs(
  enc: PackagerEncryption,
): Promise<{ args: string[]; cleanup: () => Promise<void> }> {
  const { spec } = enc;
  const keys = spec.keys
    .map((k) => {
      // The default key has the empty label: Shaka uses it for a stream whose label has no key of its own.
      const label = k.label === 'default' ? '' : drmLabels[k.label];
      return `label=${label}:key_id=${k.keyId}:key=${k.key}`;
    })
    .join(',');
  const lines = ['--enable_raw_key_encryption', `--keys=${keys}`];
  if (spec.iv) lines.push(`--iv=${spec.iv}`);
  const file = path.join(enc.keysDir, `packager-keys-${randomBytes(4).toString('hex')}.flags`);
  // 'wx': never follows or reuses a file someone put there; 0600 from the start, not chmod'ed after.
  await writeFile(file, `${lines.join('\n')}\n`, { mode: 0o600, flag: 'wx' });
  const args = [
    '--flagfile',
    file,
    '--protection_scheme',
    spec.scheme,
    // Every segment encrypted: Shaka's default leaves the first 5 s in the clear.
    '--clear_lead',
    '0',
    '--protection_systems',
    spec.systems.map((s) => packagerSystems[s]).join(','),
  ];
  if (spec.hlsKeyUri) args.push('--hls_key_uri', spec.hlsKeyUri);
  return { args, cleanup: () => rm(file, { force: true }) };
}

/**
 * A packager failure with any spelling of a key cut out of its message and of its cause's (a stderr tail):
 * the keys were checked before, so this is a guard, for messages that reach the status and the logs.
 */
export function withoutKeyText(err: unknown, spec: EncryptionSpec): unknown {
  const spellings = spec.keys.flatMap((k) => keySpellings(k.key));
  const scrub = (text: string) => spellings.reduce((t, s) => t.split(s).join('[key]'), text);
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    e.message = scrub(e.message);
    if (e.stack) e.stack = scrub(e.stack);
    const tail = (e as { stderrTail?: unknown }).stderrTail;
    if (typeof tail === 'string') Object.assign(e, { stderrTail: scrub(tail) });
  }
  return err;
}
