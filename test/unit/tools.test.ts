import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { checkTools, defaultTools, ToolMissingError } from '../../src/pipeline/tools.js';

describe('the tool check', () => {
  let dir: string;
  let withoutZimg: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'dvc-tools-'));
    // The system's FFmpeg as if built without libzimg: the same version output, that option taken out.
    withoutZimg = path.join(dir, 'ffmpeg');
    await writeFile(withoutZimg, '#!/bin/sh\nffmpeg "$@" | sed "s/--enable-libzimg//g"\n');
    await chmod(withoutZimg, 0o755);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('the system FFmpeg has zscale (Debian and Ubuntu build it with libzimg)', async () => {
    const versions = await checkTools(defaultTools(), { zscale: true });
    assert.match(versions.ffmpeg, /^ffmpeg version/);
  });

  test('an FFmpeg without zimg is refused when the configuration resizes with zscale, and only then', async () => {
    const tools = defaultTools({ ffmpeg: withoutZimg });
    await assert.rejects(checkTools(tools, { zscale: true }), (err: Error) => {
      assert.ok(err instanceof ToolMissingError);
      assert.match(err.message, /built without libzimg.*SCALER=swscale/);
      return true;
    });
    await checkTools(tools, { zscale: false });
  });
});
