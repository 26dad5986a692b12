import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { describe, test } from 'node:test';
import { poll, processesMatching } from '../hardening/procs.js';
import { generateClip } from '../helpers/media.js';
import { getJson, startTestService, submit, waitForFinal } from '../helpers/service.js';

const env = (root: string) => ({
  INPUT_DIR: path.join(root, 'input'),
  OUTPUT_DIR: path.join(root, 'output'),
  STATE_DIR: path.join(root, 'state'),
  LEASE_SECONDS: '2',
  SHUTDOWN_GRACE_SECONDS: '0',
  X264_PRESET: 'veryfast',
});

async function prepareInputs(root: string) {
  await mkdir(path.join(root, 'input'), { recursive: true });
  const long = await generateClip({ width: 1280, height: 720, seconds: 20, audio: true });
  const short = await generateClip({ width: 640, height: 360, seconds: 3, audio: true });
  await copyFile(long, path.join(root, 'input', 'long.mp4'));
  await copyFile(short, path.join(root, 'input', 'short.mp4'));
}

async function waitForStatus(url: string, id: string, status: string) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const { body } = await getJson(`${url}/status/${id}`);
    if (body.status === status) return body;
    if (Date.now() > deadline) assert.fail(`task never reached ${status} (is ${String(body.status)})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('no task is lost across restarts', () => {
  test('graceful stop with one task processing and one queued: both complete after the next start', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'dvc-restart-'));
    try {
      await prepareInputs(root);
      const first = await startTestService(env(root), { root, keepRoot: true });
      const running = await submit(first.url, 'long.mp4');
      const queued = await submit(first.url, 'short.mp4');
      await waitForStatus(first.url, running, 'processing');
      await first.close();

      const second = await startTestService(env(root), { root, keepRoot: true });
      try {
        for (const id of [running, queued]) {
          const { doc } = await waitForFinal(second.url, id, 180_000);
          assert.equal(doc.status, 'completed', doc.error ?? '');
        }
        const { body } = await getJson(`${second.url}/status/${running}`);
        assert.equal(body.attempts, 1, 'a run handed back at shutdown is not counted as an attempt');
      } finally {
        await second.close();
      }
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  test('a killed process (SIGKILL) leaves its task to be claimed again when the lease runs out; what it had published is replaced', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'dvc-crash-'));
    try {
      await prepareInputs(root);
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve'], {
        env: {
          ...process.env,
          ...env(root),
          // The lowest rung and the audio are published before the rest is encoded: the process dies with
          // part of a package out.
          EARLY_MANIFEST: 'true',
          HOST: '127.0.0.1',
          PORT: '0',
          LOG_LEVEL: 'info',
        },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const exited = new Promise((r) => child.once('exit', r));
      const url = await new Promise<string>((resolve, reject) => {
        const lines = createInterface({ input: child.stdout! });
        lines.on('line', (line) => {
          const m = /"address":"([^"]+)"/.exec(line);
          if (m) resolve(m[1]!);
        });
        child.once('exit', () => reject(new Error('server exited before listening')));
      });
      const running = await submit(url, 'long.mp4');
      const queued = await submit(url, 'short.mp4');
      await waitForStatus(url, running, 'processing');
      const published = await poll(async () => {
        const { body } = await getJson(`${url}/status/${running}`);
        return body.playable ? true : undefined;
      }, 60_000);
      assert.ok(published, 'the early package was published');
      const work = path.join(root, 'state', 'work');
      await poll(async () => (await processesMatching(work)).length > 0, 30_000);
      assert.ok((await processesMatching(work)).length > 0, 'FFmpeg was running when the server was killed');
      const firstRun = await readdir(path.join(root, 'output', 'long'));
      assert.ok(
        firstRun.some((f) => f.startsWith(`${running}-1-`)),
        `the first run's media: ${firstRun.join(' ')}`,
      );
      child.kill('SIGKILL');
      await exited;
      // Nothing could stop them from inside the dead process: the kernel does (parent-death signal).
      const left = await poll(async () => ((await processesMatching(work)).length ? undefined : true), 5_000);
      assert.ok(
        left,
        `no FFmpeg or packager outlives the killed server: ${(await processesMatching(work)).join(', ')}`,
      );

      const next = await startTestService(env(root), { root, keepRoot: true });
      try {
        for (const id of [running, queued]) {
          const { doc } = await waitForFinal(next.url, id, 180_000);
          assert.equal(doc.status, 'completed', doc.error ?? '');
        }
        const { body } = await getJson(`${next.url}/status/${running}`);
        assert.equal(body.attempts, 2, 'the killed run counts as an attempt');
        const left = (await readdir(path.join(root, 'output', 'long'))).sort();
        assert.deepEqual(
          left.map((f) => f.replace(/-[0-9a-f]{6}$/, '-…')),
          [`${running}-2-…`, 'manifest.mpd', 'master.m3u8', 'poster.jpg', 'thumbnails.vtt'],
          "the killed run's early media is gone, the second run's package is there",
        );
        assert.deepEqual(
          await readdir(path.join(root, 'state', 'work')),
          [],
          "the dead process's work directory was swept",
        );
      } finally {
        await next.close();
      }
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
