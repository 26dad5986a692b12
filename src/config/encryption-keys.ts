import { readFileSync, statSync } from 'node:fs';
import { EncryptionInputError, parseEncryption, type EncryptionOptions } from '../domain/encryption.js';

/**
 * Reads ENCRYPTION_KEYS_FILE (a request's `encryption` shape), refused if others can read it, as ssh does.
 * Problems go to `problems`, none quoting the file's content.
 */
export function readEncryptionKeysFile(file: string, problems: string[]): EncryptionOptions | undefined {
  const setting = 'ENCRYPTION_KEYS_FILE';
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch (err) {
    problems.push(`${setting}=${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    return undefined;
  }
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
    problems.push(
      `${setting}=${file} can be read or written by other users (mode ${(mode & 0o777).toString(8)}): ` +
        `chmod 600 ${file}`,
    );
    return undefined;
  }
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    // JSON.parse's message quotes the text around the error: here, possibly a key.
    const why = err instanceof SyntaxError ? 'it is not valid JSON' : (err as NodeJS.ErrnoException).code;
    problems.push(`${setting}=${file} cannot be read: ${why}`);
    return undefined;
  }
  try {
    const keys = parseEncryption(data, setting);
    if (keys.keyId === undefined && keys.keys === undefined) {
      throw new EncryptionInputError(setting, 'must give key_id and key, or keys');
    }
    return keys;
  } catch (err) {
    if (err instanceof EncryptionInputError) problems.push(err.message);
    else throw err;
    return undefined;
  }
}
