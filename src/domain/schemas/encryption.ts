import { Type } from '@sinclair/typebox';
import {
  DEFAULT_KEY_LABEL,
  encryptionSchemes,
  keyLabels,
  protectionSystems,
  type EncryptionOutput,
  type EncryptionRequest,
} from '../encryption.js';
import { JsonObject } from './shared.js';

const hex128 = { type: 'string', pattern: '^[0-9a-fA-F]{32}$' } as const;

/**
 * The `encryption` option of POST /encode, for the OpenAPI document and a first check; the domain's
 * parseEncryption checks the rest (and names the field at fault, never quoting a key).
 */
const encryptionJsonSchema = {
  type: 'object',
  additionalProperties: false,
  description:
    'Encrypts every segment with raw keys (Shaka Packager, clear_lead 0). One key for all streams ' +
    '(`key_id` and `key`), or one per label in `keys` (audio; video by rung height: sd below 720, hd below ' +
    '2160, uhd), or none to use the service’s ENCRYPTION_KEYS_FILE. Keys never appear in the status ' +
    'document, the logs or the package, and are erased from the task’s record when it ends.',
  properties: {
    scheme: {
      type: 'string',
      enum: [...encryptionSchemes],
      description:
        '"cbcs" (default: current Chrome, Edge, Firefox, Safari, FairPlay; DASH and HLS) or "cenc" ' +
        '(older DASH-only players; refused with HLS).',
    },
    key_id: { ...hex128, description: 'Key ID, 32 hex digits; shown as cenc:default_KID in the MPD.' },
    key: { ...hex128, description: 'Content key, 32 hex digits. Never shown again.' },
    iv: {
      type: 'string',
      pattern: '^(?:[0-9a-fA-F]{16}|[0-9a-fA-F]{32})$',
      description: 'A fixed IV (16 or 32 hex digits; 32 with cbcs). Random by default, as it should be.',
    },
    keys: {
      type: 'array',
      minItems: 1,
      maxItems: keyLabels.length,
      description: 'One key per label; streams of a label without one use key_id/key.',
      items: {
        type: 'object',
        required: ['label', 'key_id', 'key'],
        additionalProperties: false,
        properties: { label: { type: 'string', enum: [...keyLabels] }, key_id: hex128, key: hex128 },
      },
    },
    protection_systems: {
      type: 'array',
      maxItems: protectionSystems.length,
      items: { type: 'string', enum: [...protectionSystems] },
      description:
        'DRM systems to signal (PSSH boxes and ContentProtection, HLS KEYFORMATs) for a license server ' +
        'holding the same keys; default ["common"] (W3C Common PSSH, for ClearKey).',
    },
    hls_key_uri: {
      type: 'string',
      minLength: 1,
      maxLength: 2048,
      description:
        'The EXT-X-KEY URI where HLS players ask for the key (skd://… for FairPlay, required with it; ' +
        'or https://…). Never a data: URI: the playlists carry no key.',
    },
  },
} as const;

/** `encryption` in a request; its type is the domain's (a stored request loses its keys when the task ends). */
export const EncryptionRequestSchema = Type.Unsafe<EncryptionRequest>(encryptionJsonSchema);

/** The request's encryption as the status document's `options` echo it: no key, no IV. */
export const PublicEncryptionOptionsSchema = JsonObject({
  description: 'The encryption asked for, without its keys and IV.',
});

/** The status document's `output.encryption`. */
export const EncryptionOutputSchema = Type.Unsafe<EncryptionOutput>({
  type: 'object',
  description:
    'How the package is encrypted (absent when it is clear): the scheme, the key ID of each label ' +
    '(default: the one key of key_id), the protection systems signalled. Never a key.',
  properties: {
    scheme: { type: 'string', enum: [...encryptionSchemes] },
    key_ids: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          label: { type: 'string', enum: [DEFAULT_KEY_LABEL, ...keyLabels] },
          key_id: { type: 'string' },
        },
      },
    },
    protection_systems: { type: 'array', items: { type: 'string', enum: [...protectionSystems] } },
    hls_key_uri: { type: 'string' },
  },
});
