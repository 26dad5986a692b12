import type { FailureCode } from '../domain/failures.js';
import { runProcess } from '../process/run-process.js';
import type { StageContext } from './context.js';
import { diskFullReport, processFailure } from './process-failure.js';

/**
 * FFmpeg under a stage's watchdogs and cancel, stopped as soon as it reports a full disk (seconds, not the idle
 * watchdog's minutes); its failure becomes a TaskFailure with `code`, `what` and no path of `hidePaths`.
 */
export async function runFfmpeg(o: {
  args: string[];
  ctx: StageContext;
  code: FailureCode;
  what: string;
  hidePaths: string[];
  onStdoutLine?: (line: string) => void;
}): Promise<void> {
  const { ctx } = o;
  try {
    await runProcess(ctx.tools.ffmpeg, o.args, {
      logger: ctx.logger,
      signal: ctx.signal,
      idleTimeoutMs: ctx.idleTimeoutMs,
      timeoutMs: ctx.maxRuntimeMs,
      tempDir: ctx.tempDir,
      failOnStderr: diskFullReport,
      onStdoutLine: o.onStdoutLine,
    });
  } catch (err) {
    throw processFailure(err, o.code, o.what, o.hidePaths);
  }
}
