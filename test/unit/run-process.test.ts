import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { formatCommand, ProcessError, runProcess } from '../../src/process/run-process.js';

describe('runProcess', () => {
  test("a presigned URL's query (its signature) shows in neither the command logged nor stderr", async () => {
    const url = 'http://127.0.0.1:1/in/a.mp4?X-Amz-Credential=AK%2Fx&X-Amz-Signature=deadbeef';
    assert.equal(formatCommand('ffmpeg', ['-i', url]), "ffmpeg -i 'http://127.0.0.1:1/in/a.mp4?<redacted>'");
    const err = await runProcess('sh', ['-c', `echo "${url}: Server returned 403" >&2; exit 1`]).then(
      () => assert.fail('exit 1 rejects'),
      (e: unknown) => e as ProcessError,
    );
    assert.ok(!err.stderrTail.includes('deadbeef') && !err.command.includes('deadbeef'), err.stderrTail);
    assert.match(err.stderrTail, /a\.mp4\?<redacted> Server returned 403/);
  });

  test('stdout beyond 16 MB stops the program with an error instead of cutting the output short', async () => {
    const err = await runProcess('sh', ['-c', "head -c 20000000 /dev/zero | tr '\\0' 'x'; echo"]).catch(
      (e: unknown) => e,
    );
    assert.ok(err instanceof ProcessError, String(err));
    assert.equal(err.kind, 'output');
    assert.equal(err.message, 'sh printed more than 16 MB');
  });

  test('failOnStderr: a program that reports an error and then waits is stopped at once, as failed', async () => {
    // The line arrives in two writes, as a pipe may deliver it; then the program hangs, as Shaka Packager does.
    const script = "printf 'E1206 Packaging' >&2; sleep 0.2; printf ' Error: 8\\n' >&2; sleep 30";
    const started = Date.now();
    const err = await runProcess('sh', ['-c', script], { failOnStderr: /Packaging Error:/ }).catch(
      (e: unknown) => e,
    );
    assert.ok(err instanceof ProcessError, String(err));
    assert.equal(err.kind, 'fatal');
    assert.equal(err.exitSignal, null, 'the signal that stopped it is not its cause');
    assert.match(err.stderrTail, /Packaging Error: 8/);
    assert.ok(Date.now() - started < 20_000, 'not left to run its 30 s');
  });

  test('TMPDIR of the program is the tempDir asked for', async () => {
    const { stdout } = await runProcess('sh', ['-c', 'echo "$TMPDIR"'], { tempDir: '/work/dir/tmp' });
    assert.equal(stdout, '/work/dir/tmp\n');
  });

  test('stdout under the limit comes back whole', async () => {
    const { stdout } = await runProcess('sh', ['-c', "head -c 1000000 /dev/zero | tr '\\0' 'x'; echo"]);
    assert.equal(stdout.length, 1_000_001);
  });

  test('a setpriv without --pdeathsig (util-linux < 2.33, busybox) is not used: programs start directly', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'dvc-old-setpriv-'));
    try {
      await writeFile(
        path.join(dir, 'setpriv'),
        '#!/bin/sh\necho "setpriv: unrecognized option \'--pdeathsig\'" >&2\nexit 1\n',
      );
      await chmod(path.join(dir, 'setpriv'), 0o755);
      const script = [
        "import { launchTiedToParent } from './src/process/parent-death.ts';",
        "import { runProcess } from './src/process/run-process.ts';",
        "const launch = await launchTiedToParent('echo', ['hi']);",
        "const { stdout } = await runProcess('echo', ['hi']);",
        'console.log(JSON.stringify({ via: launch.viaSetpriv, stdout }));',
      ].join('\n');
      const { stdout } = await promisify(execFile)(
        process.execPath,
        ['--import', 'tsx', '--input-type=module', '-e', script],
        { env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } },
      );
      assert.deepEqual(JSON.parse(stdout), { via: false, stdout: 'hi\n' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
