import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { ProcessError, runProcess } from '../process/run-process.js';
import type { QcCheck } from '../domain/qc-report.js';

/** The MPEG-DASH MPD schema shipped with the project (src/qc and dist/qc are both two levels down). */
export const mpdSchemaPath = path.resolve(
  fileURLToPath(import.meta.url),
  '../../../schemas/dash/DASH-MPD.local.xsd',
);

/** Validates a manifest against the MPD schema with xmllint, offline. */
export async function checkMpdSchema(
  xmllint: string,
  manifestPath: string,
  options: { logger?: Logger; signal?: AbortSignal; tempDir?: string } = {},
): Promise<QcCheck> {
  try {
    await runProcess(xmllint, ['--noout', '--nonet', '--schema', mpdSchemaPath, manifestPath], {
      logger: options.logger,
      signal: options.signal,
      tempDir: options.tempDir,
      timeoutMs: 60_000,
    });
    return { name: 'mpd_schema', passed: true, detail: 'the MPD validates against the MPEG-DASH schema' };
  } catch (err) {
    if (!(err instanceof ProcessError) || err.kind !== 'exit') throw err;
    const dir = path.dirname(manifestPath) + path.sep;
    const errors = err.stderrTail
      .split('\n')
      .map((l) => l.split(dir).join('').trim())
      .filter((l) => l && !/ fails to validate$/.test(l));
    return {
      name: 'mpd_schema',
      passed: false,
      detail: `the MPD does not validate against the MPEG-DASH schema: ${errors.slice(0, 3).join(' | ').slice(0, 400)}`,
    };
  }
}
