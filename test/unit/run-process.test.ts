import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ProcessError, runProcess } from '../../src/process/run-process.js';

describe('runProcess', () => {
  test('stdout beyond 16 MB stops the program with an error instead of cutting the output short', async () => {
    const err = await runProcess('sh', ['-c', "head -c 20000000 /dev/zero | tr '\\0' 'x'; echo"]).catch(
      (e: unknown) => e,
    );
    assert.ok(err instanceof ProcessError, String(err));
    assert.equal(err.kind, 'output');
    assert.equal(err.message, 'sh printed more than 16 MB');
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
