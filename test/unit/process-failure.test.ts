import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TaskFailure } from '../../src/errors.js';
import { processFailure } from '../../src/pipeline/process-failure.js';
import { ProcessError, runProcess } from '../../src/process/run-process.js';

/** How a real program fails: run through runProcess, so the ProcessError is the one the pipeline sees. */
async function failureOf(script: string): Promise<TaskFailure> {
  const err = await runProcess('sh', ['-c', script]).then(
    () => assert.fail('should fail'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ProcessError);
  const failure = processFailure(err, 'encode_failed', 'FFmpeg could not encode the input', ['/work/t1']);
  assert.ok(failure instanceof TaskFailure);
  return failure;
}

describe('a failed program as a task failure', () => {
  test('the input at fault: permanent, with its last line of stderr, paths removed', async () => {
    const f = await failureOf(
      'echo "[h264 @ 0x55d0c2a4] Invalid NAL unit size in /work/t1/in.mp4" >&2; exit 1',
    );
    assert.equal(f.code, 'encode_failed');
    assert.equal(f.permanent, true);
    assert.equal(f.message, 'FFmpeg could not encode the input: h264: Invalid NAL unit size in /in.mp4');
  });

  test('a full disk: disk_full, retried', async () => {
    const f = await failureOf('echo "av_interleaved_write_frame(): No space left on device" >&2; exit 1');
    assert.equal(f.code, 'disk_full');
    assert.equal(f.permanent, false);
    assert.equal(f.message, "FFmpeg could not encode the input: the worker's disk is full");
  });

  test('killed by the system (SIGKILL, as the OOM killer does): retried, and said so', async () => {
    const f = await failureOf('echo "frame=  100 fps=50" >&2; kill -KILL $$');
    assert.equal(f.code, 'internal');
    assert.equal(f.permanent, false);
    assert.equal(
      f.message,
      'FFmpeg could not encode the input: sh was killed by the system (out of memory?)',
    );
  });

  test('a crash on the input: permanent, naming the signal rather than the last log line', async () => {
    const f = await failureOf('echo "frame=  100 fps=50" >&2; kill -SEGV $$');
    assert.equal(f.code, 'encode_failed');
    assert.equal(f.message, 'FFmpeg could not encode the input: sh crashed (SIGSEGV)');
  });

  test('stopped from outside (SIGTERM): retried, not blamed on the input', async () => {
    const f = await failureOf('kill -TERM $$');
    assert.equal(f.code, 'internal');
    assert.equal(f.message, 'FFmpeg could not encode the input: sh was stopped (SIGTERM)');
  });

  test('FFmpeg stopped with SIGTERM (it catches it and exits 255 saying so): retried as well', async () => {
    const f = await failureOf('echo "Exiting normally, received signal 15." >&2; exit 255');
    assert.equal(f.code, 'internal');
    assert.equal(f.message, 'FFmpeg could not encode the input: sh was stopped (SIGTERM)');
  });

  test('a program in a directory with spaces is named by its file name', async () => {
    const err = await runProcess('/opt/my tools/ffmpeg', []).catch((e: unknown) => e);
    const f = processFailure(err, 'encode_failed', 'FFmpeg could not encode the input', []);
    assert.ok(f instanceof TaskFailure);
    assert.equal(f.message, 'FFmpeg could not encode the input: ffmpeg could not be started on the worker');
  });

  test('a program that cannot start: retried (another worker may have it), no path in the reason', async () => {
    const err = await runProcess('/nonexistent/bin/ffmpeg', ['-version']).catch((e: unknown) => e);
    const f = processFailure(err, 'encode_failed', 'FFmpeg could not encode the input', []);
    assert.ok(f instanceof TaskFailure);
    assert.equal(f.code, 'internal');
    assert.equal(f.message, 'FFmpeg could not encode the input: ffmpeg could not be started on the worker');
  });
});
