import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { generateClip } from '../helpers/media.js';

const run = promisify(execFile);
const cli = ['--import', 'tsx', 'src/cli/main.ts'];

test('convert --encryption KEYS.json encrypts with the file’s keys; a file others can read is refused', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'dvc-cli-enc-'));
  try {
    const clip = await generateClip({ width: 320, height: 180, seconds: 2, audio: true });
    const keys = { key_id: randomBytes(16).toString('hex'), key: randomBytes(16).toString('hex') };
    const keysFile = path.join(dir, 'keys.json');
    await writeFile(keysFile, JSON.stringify(keys), { mode: 0o644 });
    const args = [...cli, 'convert', clip, '-o', path.join(dir, 'out'), '-q', '--encryption', keysFile];
    const refused = await run(process.execPath, args).then(
      () => assert.fail('a keys file readable by others was taken'),
      (err: { code: number; stderr: string }) => err,
    );
    assert.notEqual(refused.code, 0);
    assert.match(
      refused.stderr,
      /ENCRYPTION_KEYS_FILE=.* can be read or written by other users \(mode 644\)/,
    );

    await chmod(keysFile, 0o600);
    const report = path.join(dir, 'report.json');
    const { stdout, stderr } = await run(process.execPath, [...args, '--report', report]);
    const output = JSON.parse(await readFile(report, 'utf8')) as { encryption: unknown };
    assert.deepEqual(output.encryption, {
      scheme: 'cbcs',
      key_ids: [{ label: 'default', key_id: keys.key_id }],
      protection_systems: ['common'],
    });
    const mpd = await readFile(path.join(dir, 'out', 'manifest.mpd'), 'utf8');
    assert.match(mpd, /cenc:default_KID=/);
    for (const text of [stdout, stderr, JSON.stringify(output), mpd]) assert.ok(!text.includes(keys.key));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
