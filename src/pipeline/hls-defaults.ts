import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { attribute, resolveUri } from '../manifests/hls.js';

/**
 * Makes `defaultPlaylist`'s audio rendition the master's one `DEFAULT=YES`: Shaka Packager sets it only by
 * `--default_language`, which cannot single out one of two tracks in the same language.
 */
export async function markHlsDefaultAudio(
  pkgDir: string,
  masterName: string,
  defaultPlaylist: string | undefined,
): Promise<void> {
  const file = path.join(pkgDir, masterName);
  const before = await readFile(file, 'utf8');
  const after = before
    .split('\n')
    .map((line) => {
      if (!line.startsWith('#EXT-X-MEDIA:') || attribute(line, 'TYPE') !== 'AUDIO') return line;
      const uri = attribute(line, 'URI');
      const isDefault = !!uri && resolveUri(masterName, uri) === defaultPlaylist;
      return line.replace(/([:,])DEFAULT=(YES|NO)/, `$1DEFAULT=${isDefault ? 'YES' : 'NO'}`);
    })
    .join('\n');
  if (after !== before) await writeFile(file, after);
}
