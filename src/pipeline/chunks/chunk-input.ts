import { inputFormatWhitelist, inputGuardArgs } from '../input-formats.js';

/** Whether a chunk's input is an http(s) URL rather than a local path. */
export function isUrlInput(input: string): boolean {
  return /^https?:\/\//i.test(input);
}

/**
 * How FFmpeg opens a chunk's input: a local file as every run does, or an http(s) URL read in byte ranges, with
 * only the protocols that takes (TLS over TCP for https) and the same video containers.
 */
export function chunkInputArgs(input: string): string[] {
  if (!isUrlInput(input)) return [...inputGuardArgs(), '-i', `file:${input}`];
  const protocols = /^https:/i.test(input) ? 'https,tls,tcp' : 'http,tcp';
  return ['-protocol_whitelist', protocols, '-format_whitelist', inputFormatWhitelist, '-i', input];
}
