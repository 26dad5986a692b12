import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { describe, test } from 'node:test';
import { TaskFailure } from '../../src/domain/failures.js';
import { processFailure } from '../../src/pipeline/process-failure.js';
import { ProcessError, runProcess } from '../../src/process/run-process.js';
import { diskFullInstead } from '../../src/jobs/disk-space.js';

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

  test('a failure midway: the cause, not the statistics the encoders print on closing', async () => {
    // FFmpeg's own words when zimg refuses a frame midway, the encoders' closing statistics after them.
    const stderr = [
      '[Parsed_zscale_2 @ 0x55d84a234d80] code 1027: image dimensions must be divisible by subsampling factor',
      '    Last message repeated 3 times',
      'Error while filtering: Generic error in an external library',
      'Failed to inject frame into filter network: Generic error in an external library',
      'Error while processing the decoded data for stream #0:0',
      ...Array.from({ length: 3 }, (_, i) => [
        `[libx264 @ 0x5615ed8d148${i}] frame I:1     Avg QP:10.53  size:  4689`,
        `[libx264 @ 0x5615ed8d148${i}] mb P  I16..4:  1.6%  0.5%  2.0%  P16..4: 12.4%  0.0%  0.0%  skip:83.5%`,
        `[libx264 @ 0x5615ed8d148${i}] consecutive B-frames:  1.2%  0.0%  0.0% 98.8%`,
        `[libx264 @ 0x5615ed8d148${i}] 8x8 transform intra:9.3% inter:59.4%`,
        `[libx264 @ 0x5615ed8d148${i}] coded y,uvDC,uvAC intra: 12.6% 56.7% 43.5% inter: 0.6% 3.7% 0.9%`,
        `[libx264 @ 0x5615ed8d148${i}] i8 v,h,dc,ddl,ddr,vr,hd,vl,hu: 79%  6%  3%  6%  0%  1%  1%  4%  1%`,
        `[libx264 @ 0x5615ed8d148${i}] i8c dc,h,v,p: 28% 29% 32% 11%`,
        `[libx264 @ 0x5615ed8d148${i}] Weighted P-Frames: Y:0.0% UV:0.0%`,
        `[libx264 @ 0x5615ed8d148${i}] kb/s:74.82`,
        // Padding as long as the rest of x264's statistics, so the cause is more than 4 KB from the end.
        `[libx264 @ 0x5615ed8d148${i}] ${'i4 v,h,dc,ddl,ddr,vr,hd,vl,hu: 57% 20% 15%  1%  1%  1%  0%  2%  2% '.repeat(10)}`,
      ]).flat(),
      '[aac @ 0x5615ed8be440] Qavg: 107.280',
      '[aac @ 0x5615ed8be440] 2 frames left in the queue on closing',
      'Conversion failed!',
    ];
    const f = await failureOf(`printf '%s\\n' ${stderr.map((l) => `'${l}'`).join(' ')} >&2; exit 1`);
    assert.equal(f.code, 'encode_failed');
    assert.equal(
      f.message,
      'FFmpeg could not encode the input: Parsed_zscale_2: code 1027: image dimensions must be divisible by subsampling factor',
    );
  });

  test("a muxer's complaint, not the size summary FFmpeg prints after it", async () => {
    const stderr = [
      "[mp4 @ 0x55f1c0a2b2c0] Malformed AAC bitstream detected: use the audio bitstream filter 'aac_adtstoasc' to fix it",
      'av_interleaved_write_frame(): Invalid data found when processing input',
      'video:8kB audio:0kB subtitle:0kB other streams:0kB global headers:0kB muxing overhead: 9.8%',
      'Conversion failed!',
    ];
    const f = await failureOf(`printf '%s\\n' ${stderr.map((l) => `"${l}"`).join(' ')} >&2; exit 1`);
    assert.equal(
      f.message,
      'FFmpeg could not encode the input: av_interleaved_write_frame(): Invalid data found when processing input',
    );
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

describe('a failure on a nearly full disk', () => {
  const timeout = new TaskFailure('timeout', 'FFmpeg could not encode the input: no progress for 120 s');
  test('is disk_full, retried, when the work directory has less free space than the threshold', async () => {
    // This disk, with a threshold above any disk's free space: as full as a disk gets.
    const f = await diskFullInstead(timeout, tmpdir(), Number.MAX_SAFE_INTEGER);
    assert.ok(f instanceof TaskFailure);
    assert.equal(f.code, 'disk_full');
    assert.equal(f.permanent, false);
    assert.match(f.message, /^the worker's disk is full \(\d+ MB free\)$/);
    assert.equal(f.cause, timeout);
  });
  test('keeps its own code when there is room, or when a disk cannot cause it', async () => {
    assert.equal(await diskFullInstead(timeout, tmpdir(), 0), timeout);
    const missing = new TaskFailure('input_not_found', 'input not found');
    assert.equal(await diskFullInstead(missing, tmpdir(), Number.MAX_SAFE_INTEGER), missing);
    const cancelled = new TaskFailure('cancelled', 'cancelled');
    assert.equal(await diskFullInstead(cancelled, tmpdir(), Number.MAX_SAFE_INTEGER), cancelled);
  });
});
