import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { settingNames } from '../../src/config/config.js';
import { encodeOptionNames } from '../../src/domain/schemas/encode-request.js';

describe('documentation matches the code', () => {
  test('every setting is in the README table and in .env.example', async () => {
    const readme = await readFile('README.md', 'utf8');
    const example = await readFile('.env.example', 'utf8');
    for (const name of settingNames) {
      assert.match(readme, new RegExp(`\\|[^\\n]*\`${name}\`[^\\n]*\\|`), `${name} in the README's table`);
      assert.match(example, new RegExp(`^# ${name}=`, 'm'), `${name} in .env.example`);
    }
  });

  test("every request option is in the README's table; the track options in .env.example too", async () => {
    const readme = await readFile('README.md', 'utf8');
    const example = await readFile('.env.example', 'utf8');
    for (const name of encodeOptionNames) {
      assert.match(readme, new RegExp(`^\\| \`${name}\` +\\|`, 'm'), `${name} in the README's options table`);
    }
    // Not settings, yet where an operator looks for what a package holds (issue 21).
    for (const name of ['audio_tracks', 'default_audio_language', 'subtitles', 'invalid_subtitles'])
      assert.ok(example.includes(name), `${name} in .env.example`);
  });
});
