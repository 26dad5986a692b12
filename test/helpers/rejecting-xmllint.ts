import { chmod, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * Writes into `dir` a stand-in xmllint (for XMLLINT_PATH) that finds every MPD invalid: a QC failure injected
 * where the real tool sits. Returns its path.
 */
export async function rejectingXmllint(dir: string): Promise<string> {
  const script = path.join(dir, 'xmllint');
  await writeFile(
    script,
    '#!/bin/sh\n' +
      'if [ "$1" = "--version" ]; then echo "xmllint: using libxml version 0" >&2; exit 0; fi\n' +
      'echo "manifest.mpd:2: element MPD: Schemas validity error : injected by the test" >&2\n' +
      'echo "manifest.mpd fails to validate" >&2\n' +
      'exit 3\n',
  );
  await chmod(script, 0o755);
  return script;
}
