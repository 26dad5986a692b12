import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
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
});
