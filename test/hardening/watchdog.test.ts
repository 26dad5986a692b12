import assert from 'node:assert/strict';
import { chmod, copyFile, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generateClip } from '../helpers/media.js';
import { startTestService, submit, waitForFinal, type TestService } from '../helpers/service.js';
import { poll, processesMatching } from './procs.js';

describe('watchdog', () => {
  let dir: string;
  let clip: string;
  const services: TestService[] = [];
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'dvc-watchdog-'));
    clip = await generateClip({ width: 640, height: 360, seconds: 10, audio: true });
  });
  after(async () => {
    for (const s of services) await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('an encode running past PROCESS_MAX_RUNTIME_SECONDS is killed and the task fails with a timeout', async () => {
    const svc = await startTestService({
      PROCESS_MAX_RUNTIME_SECONDS: '1',
      LADDER: '360:800k',
      X264_PRESET: 'veryslow',
    });
    services.push(svc);
    await copyFile(clip, path.join(svc.inputDir, 'long.mp4'));
    const id = await submit(svc.url, 'long.mp4');
    const { doc } = await waitForFinal(svc.url, id, 60_000);
    assert.equal(doc.status, 'failed');
    assert.equal(doc.error_code, 'timeout');
    assert.equal(doc.error, 'FFmpeg could not encode the input: ffmpeg ran past its time limit of 1 s');
    assert.equal(doc.cancelled, false);
    assert.deepEqual(await processesMatching(id), [], 'no FFmpeg of the task is left');
    assert.deepEqual(await readdir(path.join(svc.stateDir, 'work')), [], 'work directory removed');
    assert.deepEqual(await readdir(svc.outputDir), [], 'nothing published');
  });

  test('a process silent for PROCESS_IDLE_TIMEOUT_SECONDS is killed with its whole process group', async () => {
    // Stands in for an FFmpeg that hangs without a word when it encodes (the run with -progress): starts a
    // child of its own and waits on it forever. Any other call (start-up checks) runs the real FFmpeg.
    const marker = `${1000 + (process.pid % 1000)}.${Date.now() % 100000}`;
    const hang = path.join(dir, 'hanging-ffmpeg');
    await writeFile(
      hang,
      `#!/bin/sh\ncase " $* " in *" -progress "*) ;; *) exec ffmpeg "$@" ;; esac\nsleep ${marker} &\nwait\n`,
    );
    await chmod(hang, 0o755);
    const svc = await startTestService({ PROCESS_IDLE_TIMEOUT_SECONDS: '1', FFMPEG_PATH: hang });
    services.push(svc);
    await copyFile(clip, path.join(svc.inputDir, 'hang.mp4'));
    const started = Date.now();
    const id = await submit(svc.url, 'hang.mp4');
    const { doc } = await waitForFinal(svc.url, id, 30_000);
    assert.equal(doc.status, 'failed');
    assert.equal(doc.error_code, 'timeout');
    assert.equal(doc.error, 'FFmpeg could not encode the input: hanging-ffmpeg made no progress for 1 s');
    assert.ok(!doc.error?.includes(dir), 'the reason shows no server path');
    assert.ok(Date.now() - started < 15_000, 'killed soon after it went quiet');
    const left = await poll(
      async () => ((await processesMatching(`sleep ${marker}`)).length ? undefined : true),
      5_000,
    );
    assert.ok(left, 'the child the hung process started is gone too (process group killed)');
    assert.deepEqual(await readdir(path.join(svc.stateDir, 'work')), [], 'work directory removed');
  });
});
