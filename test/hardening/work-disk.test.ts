import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readdir, readFile, rm, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { generateClip } from '../helpers/media.js';
import { getJson, startTestService, submit, waitForFinal, type StatusDoc } from '../helpers/service.js';
import { poll, processesMatching } from './procs.js';

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

  test('a small one (32 MB) converts a small clip in the CLI and the server, leaving nothing in TMPDIR', async (t) => {
    // 32 MB: room for this clip's package many times over, though not for a fixed reserve of 64 MB.
    const work = await mountTmpfs(t, 32);
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

describe('a work disk that fills up during the encode', () => {
  let clip: string;
  before(async () => {
    clip = await generateClip({ width: 1280, height: 720, seconds: 20, audio: true });
  });

  /**
   * Runs the clip on a server whose WORK_DIR is a small tmpfs, fills the tmpfs once the encode is under way
   * (`beforeFill` first), and returns the final status and the seconds from the fill to the failure.
   */
  async function fillDuringEncode(
    t: TestContext,
    beforeFill: (work: string) => Promise<void> = async () => {},
  ) {
    const work = await mountTmpfs(t, 48);
    if (!work) return undefined;
    try {
      const svc = await startTestService({ WORK_DIR: work, TASK_MAX_ATTEMPTS: '1' });
      try {
        await copyFile(clip, path.join(svc.inputDir, 'clip.mp4'));
        const id = await submit(svc.url, 'clip.mp4');
        const encoding = await poll(async () => {
          const doc = (await getJson(`${svc.url}/status/${id}`)).body as StatusDoc;
          return doc.stage === 'encode' && doc.progress >= 10
            ? doc
            : doc.status === 'failed'
              ? doc
              : undefined;
        }, 60_000);
        assert.equal(encoding?.stage, 'encode', `not encoding: ${JSON.stringify(encoding)}`);
        await beforeFill(work);
        const { bavail, bsize } = await statfs(work);
        await run('fallocate', ['-l', String(bavail * bsize), path.join(work, 'filler')]);
        const filledAt = Date.now();
        const { doc } = await waitForFinal(svc.url, id, 120_000);
        return { doc, seconds: (Date.now() - filledAt) / 1000 };
      } finally {
        await svc.close();
      }
    } finally {
      await unmount(work);
    }
  }

  test('fails the attempt with disk_full within seconds when the packager reports it', async (t) => {
    const result = await fillDuringEncode(t);
    if (!result) return;
    assert.equal(result.doc.status, 'failed');
    assert.equal(result.doc.error_code, 'disk_full', result.doc.error ?? '');
    // Not the idle watchdog's two minutes.
    assert.ok(result.seconds < 15, `noticed after ${result.seconds} s`);
  });

  test('fails the attempt with disk_full within seconds when the output just stops growing', async (t) => {
    // A packager that neither writes nor says anything (a hung network disk): FFmpeg then waits on its pipes.
    const packager: number[] = [];
    const result = await fillDuringEncode(t, async (work) => {
      for (const pid of await processesMatching(work)) {
        if ((await readFile(`/proc/${pid}/cmdline`, 'utf8')).includes('packager')) packager.push(pid);
      }
      assert.equal(packager.length, 1, 'the packager runs');
      for (const pid of packager) process.kill(pid, 'SIGSTOP');
    });
    if (!result) return;
    assert.equal(result.doc.status, 'failed');
    assert.equal(result.doc.error_code, 'disk_full', result.doc.error ?? '');
    assert.match(result.doc.error ?? '', /stopped writing/);
    assert.ok(result.seconds < 15, `noticed after ${result.seconds} s`);
  });
});
