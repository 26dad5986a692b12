import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ESLint } from 'eslint';

// The layer rule is the project's lint, run as `npm run lint` runs it: a bottom module reaching up must fail.
test('lint refuses a domain module that imports the HTTP app, naming the layer rule', async () => {
  const eslint = new ESLint();
  const [result] = await eslint.lintText(
    "import { buildApp } from '../api/app.js';\nexport const x = buildApp;\n",
    {
      filePath: 'src/domain/task.ts',
    },
  );
  const layer = result!.messages.find((m) => m.ruleId === 'boundaries/dependencies');
  assert.ok(layer, `no layer error in ${JSON.stringify(result!.messages)}`);
  assert.match(layer.message, /layer rule: a "domain" module may not import the "entry" layer/);
});

test('lint refuses an import cycle within a layer', async () => {
  const eslint = new ESLint();
  // make-fifos.ts imports run-process.ts: run-process importing it back closes a loop.
  const [result] = await eslint.lintText(
    "import { makeFifos } from './make-fifos.js';\nexport const y = makeFifos;\n",
    {
      filePath: 'src/process/run-process.ts',
    },
  );
  assert.ok(
    result!.messages.some((m) => m.ruleId === 'import-x/no-cycle'),
    JSON.stringify(result!.messages),
  );
});
