import type { Logger } from 'pino';
import type { EncryptionOptions } from '../domain/encryption.js';
import type { StageContext } from '../pipeline/context.js';
import type { InputLimits } from '../pipeline/convert.js';
import type { EncodeProfile, EncodeSettings } from '../pipeline/plan.js';
import type { MediaTools } from '../pipeline/tools.js';
import type { StorageSettings } from '../storage/storage-settings.js';

/** What the jobs need of the configuration; `config/` builds it (Config extends it), jobs never read the environment. */
export interface JobSettings {
  workDir: string;
  output: StorageSettings;
  outputPrefix: string;
  cacheControl: { segments: string; manifests: string };
  uploadConcurrency: number;
  encode: EncodeSettings;
  /** Named encoder settings a request can pick with `"ladder": "<name>"` (built-ins, then PROFILES_FILE). */
  profiles: Record<string, EncodeProfile>;
  /**
   * Publish the lowest rung and the audio as a playable package before the other rungs are encoded (a second
   * decode of the source: playable sooner, complete later).
   */
  earlyManifest: boolean;
  /**
   * Split and stitch: an input longer than `minInputSeconds` is encoded in chunks of about `seconds` (rounded
   * to whole segments), each a job any worker takes; a request's `chunk_seconds` overrides both.
   */
  chunks: { seconds: number; minInputSeconds: number };
  /** Checks of every package before it is published: `enforce` fails the task, `warn` only records. */
  qc: { mode: 'enforce' | 'warn' | 'off'; quality: boolean };
  limits: InputLimits & { maxInputBytes: number; maxQueuedTasks: number; bodyLimitBytes: number };
  watchdog: { idleTimeoutMs: number; maxRuntimeMs: number };
  /**
   * ENCRYPTION_KEYS_FILE (`serverKeys`: for requests whose `encryption` names no key, so callers need not
   * hold keys) and ENCRYPTION_REQUIRED (a request without `encryption` is refused).
   */
  encryption: { serverKeys?: EncryptionOptions; required: boolean };
}

/** The context a job's pipeline stages run in: its programs under the configured watchdogs, in `tempDir`. */
export function stageContext(o: {
  tools: MediaTools;
  logger: Logger;
  signal?: AbortSignal;
  watchdog: JobSettings['watchdog'];
  tempDir: string;
}): StageContext {
  const { tools, logger, signal, tempDir } = o;
  return { tools, logger, signal, tempDir, ...o.watchdog };
}
