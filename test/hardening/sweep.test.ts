import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTestService, type TestService } from '../helpers/service.js';
import { poll } from './procs.js';

/** The pid of a process that has exited: a worker that died without cleaning up had one like it. */
async function deadPid(): Promise<number> {
  const child = spawn('true');
  await new Promise((r) => child.on('exit', r));
  assert.ok(child.pid);
  return child.pid;
}

describe('start-up sweep of orphan work directories', () => {
  let root: string;
  let svc: TestService | undefined;
  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'dvc-sweep-'));
  });
  after(async () => {
    await svc?.close();
    await rm(root, { recursive: true, force: true });
  });

  test('directories of dead processes are removed; live ones and foreign names are kept', async (t) => {
    const work = path.join(root, 'state', 'work');
    const dead = path.join(work, `${await deadPid()}-0b6e1f1c-dead-task`);
    // Another worker that runs (it may be encoding into its directory right now).
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30_000)']);
    t.after(() => other.kill());
    const live = path.join(work, `${other.pid}-5d0c9a2e-live-task`);
    // A pid reused after a reboot: another program has it now.
    const program = spawn('sleep', ['30']);
    t.after(() => program.kill());
    const reused = path.join(work, `${program.pid}-77aa11bb-before-the-reboot`);
    // This process's pid, but from before a restart (a container's node gets the same pid each time).
    const earlierSelf = path.join(work, `${process.pid}-0000beef-task-of-the-last-run`);
    const foreign = path.join(work, 'lost+found');
    for (const dir of [dead, live, earlierSelf, foreign, reused]) {
      await mkdir(path.join(dir, 'encoded'), { recursive: true });
      await writeFile(path.join(dir, 'encoded', 'video_360p.mp4'), Buffer.alloc(1024));
    }
    svc = await startTestService({}, { root, keepRoot: true });
    assert.ok(!existsSync(dead), 'the dead worker’s directory is gone');
    assert.ok(!existsSync(earlierSelf), 'so is the one of the previous run under the same pid');
    assert.ok(
      existsSync(path.join(live, 'encoded', 'video_360p.mp4')),
      'a running process’s directory stays',
    );
    assert.ok(existsSync(foreign), 'a directory not named by a pid stays');
    assert.ok(!existsSync(reused), 'one named by a pid that another program has now is gone');
  });

  test('a worker that keeps running sweeps again: a directory a dead process left later is removed', async () => {
    const periodic = await startTestService({}, { api: false, sweepIntervalMs: 200 });
    try {
      const dead = path.join(periodic.stateDir, 'work', `${await deadPid()}-1c2d3e4f-killed-later`);
      await mkdir(dead, { recursive: true });
      await writeFile(path.join(dead, 'video_360p.mp4'), Buffer.alloc(1024));
      const gone = await poll(async () => (existsSync(dead) ? undefined : true), 5_000);
      assert.ok(gone, 'the directory of a worker that died after this one started is swept');
    } finally {
      await periodic.close();
    }
  });

  test('an upload a killed process left unfinished is removed after an hour; one being written stays', async () => {
    await svc?.close();
    svc = undefined;
    const uploads = path.join(root, 'input', 'uploads');
    const stale = path.join(uploads, 'e9a1c7a4-5b2d-4e0f-9d1a-2f6b8c3d4e5f', 'talk.mp4.3fa9c2d1e0b4.part');
    const fresh = path.join(uploads, '0c4b1d2e-8f7a-4a6b-9c5d-3e2f1a0b9c8d', 'demo.mp4.81c2d3e4f5a6.part');
    const done = path.join(uploads, '6d5c4b3a-2f1e-4d0c-8b9a-7f6e5d4c3b2a', 'done.mp4');
    // An upload named like a browser's unfinished download is a finished file all the same.
    const namedPart = path.join(uploads, '5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d', 'recording.mp4.part');
    for (const file of [stale, fresh, done, namedPart]) {
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, Buffer.alloc(4096));
    }
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    await utimes(stale, twoHoursAgo, twoHoursAgo);
    await utimes(done, twoHoursAgo, twoHoursAgo);
    await utimes(namedPart, twoHoursAgo, twoHoursAgo);
    svc = await startTestService({}, { root, keepRoot: true });
    assert.ok(!existsSync(path.dirname(stale)), 'the stale part and its directory are gone');
    assert.ok(
      existsSync(fresh),
      'a part written within the hour stays (another process may be receiving it)',
    );
    assert.ok(existsSync(done), 'a finished upload stays, however old');
    assert.ok(existsSync(namedPart), 'a finished upload called *.part stays too');
  });

  test('a published file a killed worker left unfinished is removed after an hour (in a journal, after a minute); one being written stays', async () => {
    await svc?.close();
    svc = undefined;
    const media = path.join(root, 'output', 'talk', '5f0c2a9e-1-3b7d', 'video_360p');
    const stale = path.join(media, '7.m4s.0a1b2c3d4e5f.part');
    const fresh = path.join(media, '8.m4s.9f8e7d6c5b4a.part');
    const segment = path.join(media, '6.m4s');
    const lonely = path.join(root, 'output', 'other', 'manifest.mpd.c0ffee123456.part');
    // A copy of a replaced manifest, cut off by a kill: written in milliseconds, so stale after a minute.
    const journal = path.join(root, 'output', 'talk', '.replaced-5f0c2a9e', 'manifest.mpd.5e6f7a8b9c0d.part');
    const journalNow = path.join(root, 'output', 'talk', '.replaced-77aa', 'journal.json.112233445566.part');
    for (const file of [stale, fresh, segment, lonely, journal, journalNow]) {
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, Buffer.alloc(2048));
    }
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    for (const file of [stale, segment, lonely]) await utimes(file, twoHoursAgo, twoHoursAgo);
    const fiveMinutesAgo = new Date(Date.now() - 5 * 60_000);
    await utimes(journal, fiveMinutesAgo, fiveMinutesAgo);
    svc = await startTestService({}, { root, keepRoot: true });
    // Swept in the background: the service is up before it ends.
    assert.ok(
      // The directory a part leaves empty goes with it, after it.
      await poll(
        async () => !existsSync(stale) && !existsSync(path.dirname(lonely)) && !existsSync(journal),
        10_000,
      ),
      'the stale parts are removed, and a directory left empty',
    );
    assert.ok(existsSync(fresh), 'a part written within the hour stays (a publish may be under way)');
    assert.ok(existsSync(segment), 'published files stay, however old');
    assert.ok(existsSync(journalNow), "a journal's part being written stays");
  });

  test('an API-only process does not sweep (it runs no tasks)', async () => {
    await svc?.close();
    svc = undefined;
    const dead = path.join(root, 'state', 'work', `${await deadPid()}-a1b2c3d4-api-only`);
    await mkdir(dead, { recursive: true });
    svc = await startTestService({}, { root, keepRoot: true, worker: false });
    assert.ok(existsSync(dead));
  });
});
