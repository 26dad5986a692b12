import { inputFormatWhitelist, inputGuardArgs } from '../input-formats.js';
import { withUrlRelay } from './url-relay.js';

/** Whether a chunk's input is an http(s) URL rather than a local path. */
export function isUrlInput(input: string): boolean {
  return /^https?:\/\//i.test(input);
}

/**
 * Runs `use` with the FFmpeg input options (through `-i`) for a chunk's input: a local file as every run opens
 * it, or an http(s) URL read in byte ranges through a local relay (see withUrlRelay: the signed URL stays in
 * this process), with http over TCP as the only protocols and the same video containers.
 */
export async function withChunkInput<T>(
  input: string,
  use: (inputArgs: string[]) => Promise<T>,
  logger?: Parameters<typeof withUrlRelay>[2],
): Promise<T> {
  if (!isUrlInput(input)) return use([...inputGuardArgs(), '-i', `file:${input}`]);
  return withUrlRelay(
    input,
    (local) =>
      use(['-protocol_whitelist', 'http,tcp', '-format_whitelist', inputFormatWhitelist, '-i', local]),
    logger,
  );
}
