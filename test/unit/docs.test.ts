import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { settingNames } from '../../src/config/config.js';

describe('documentation matches the code', () => {
  test('every setting is in the README table and in .env.example', async () => {
    const readme = await readFile('README.md', 'utf8');
    const example = await readFile('.env.example', 'utf8');
    for (const name of settingNames) {
      assert.match(readme, new RegExp(`\\|[^\\n]*\`${name}\`[^\\n]*\\|`), `${name} in the README's table`);
      assert.match(example, new RegExp(`^# ${name}=`, 'm'), `${name} in .env.example`);
    }
  });
});
