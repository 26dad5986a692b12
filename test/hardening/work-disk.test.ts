import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { generateClip } from '../helpers/media.js';
import { startTestService, submit, waitForFinal } from '../helpers/service.js';

const run = promisify(execFile);
const cli = ['--import', 'tsx', 'src/cli/main.ts'];
/** The system temporary directory as the test started (the tests below point TMPDIR elsewhere). */
const baseTmp = tmpdir();

/** A tmpfs of `sizeMb` mounted on a new directory (needs root, as in CI); undefined, the test skipped, elsewhere. */
async function mountTmpfs(t: TestContext, sizeMb: number): Promise<string | undefined> {
  const dir = await mkdtemp(path.join(baseTmp, 'dvc-work-disk-'));
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m`, 'tmpfs', dir]);
    return dir;
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    t.skip(`cannot mount a tmpfs here: ${(err as Error).message.split('\n')[0]}`);
    return undefined;
  }
}

async function unmount(dir: string): Promise<void> {
  await run('umount', [dir]);
  await rm(dir, { recursive: true, force: true });
}

describe('WORK_DIR on a disk of its own', () => {
  // The system temporary directory of this test and its children: on the root disk, apart from the tmpfs.
  let systemTmp: string;
  let clip: string;
  const savedTmpdir = process.env.TMPDIR;
  before(async () => {
    clip = await generateClip({ width: 640, height: 360, seconds: 2, audio: true });
    systemTmp = await mkdtemp(path.join(baseTmp, 'dvc-system-tmp-'));
    process.env.TMPDIR = systemTmp;
  });
  after(async () => {
    if (savedTmpdir === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = savedTmpdir;
    await rm(systemTmp, { recursive: true, force: true });
  });

  test('converts in the CLI and the server, and no program leaves temporary files in TMPDIR', async (t) => {
    const work = await mountTmpfs(t, 110);
    if (!work) return;
    const out = await mkdtemp(path.join(systemTmp, 'out-'));
    try {
      // Shaka Packager writes its playlists to a temporary file and renames it into place: from the system's
      // temporary directory into WORK_DIR on another file system, that rename fails (EXDEV).
      await run(process.execPath, [...cli, 'convert', clip, '-o', path.join(out, 'pkg'), '-q'], {
        env: { ...process.env, WORK_DIR: work, TMPDIR: systemTmp, X264_PRESET: 'ultrafast' },
      });
      assert.ok((await readdir(path.join(out, 'pkg'))).includes('master.m3u8'));

      const svc = await startTestService({ WORK_DIR: work, TASK_MAX_ATTEMPTS: '1' });
      try {
        await copyFile(clip, path.join(svc.inputDir, 'clip.mp4'));
        const { doc } = await waitForFinal(svc.url, await submit(svc.url, 'clip.mp4'), 60_000);
        assert.equal(doc.status, 'completed', `${doc.error_code}: ${doc.error}`);
      } finally {
        await svc.close();
      }
      // tsx keeps its compile cache there (the CLI runs from the sources).
      assert.deepEqual(
        (await readdir(systemTmp)).filter((name) => name !== path.basename(out) && !name.startsWith('tsx-')),
        [],
        'nothing left in the system temporary directory',
      );
      assert.deepEqual(await readdir(work), [], 'the work directories are removed');
    } finally {
      await rm(out, { recursive: true, force: true });
      await unmount(work);
    }
  });
});
