import js from '@eslint/js';
import boundaries from 'eslint-plugin-boundaries';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import { importX } from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

/**
 * The layers of src/, top to bottom; a module may import its own layer and the layers below it, never one above.
 * `config/` is part of the entry layer: only entry points read the environment.
 */
const layers = [
  {
    type: 'entry',
    pattern: ['src/api', 'src/cli', 'src/app', 'src/config'],
    below: ['jobs', 'adapters', 'media', 'domain', 'process'],
  },
  { type: 'jobs', pattern: ['src/jobs'], below: ['adapters', 'media', 'domain', 'process'] },
  {
    type: 'adapters',
    pattern: ['src/queue', 'src/storage', 'src/callbacks', 'src/metrics'],
    below: ['domain', 'process'],
  },
  { type: 'media', pattern: ['src/pipeline', 'src/qc', 'src/manifests'], below: ['domain', 'process'] },
  { type: 'domain', pattern: ['src/domain'], below: ['process'] },
  { type: 'process', pattern: ['src/process'], below: [] },
];
const order =
  'entry points (api, cli, app, config) → jobs → adapters (queue, storage, callbacks, metrics) and media (pipeline, qc, manifests) → domain → process';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'data/', 'coverage/', 'web/dist/', 'bench/results/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        // node:test's describe/test return promises the runner itself awaits.
        {
          allowForKnownSafeCalls: [
            {
              from: 'package',
              package: 'node:test',
              name: ['describe', 'test', 'it', 'suite', 'before', 'after'],
            },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', ignoreRestSiblings: true }],
    },
  },
  {
    files: ['src/**/*.ts'],
    plugins: { boundaries, 'import-x': importX },
    settings: {
      'boundaries/elements': layers.flatMap(({ type, pattern }) =>
        pattern.map((p) => ({ type, pattern: p })),
      ),
      'boundaries/include': ['src/**/*.ts'],
      'import-x/extensions': ['.ts'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import/resolver': { typescript: { project: 'tsconfig.json' } },
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: 'tsconfig.json' })],
      'boundaries/dependency-nodes': ['import', 'dynamic-import', 'export'],
    },
    rules: {
      'boundaries/dependencies': [
        'error',
        {
          default: 'disallow',
          message: `layer rule: a "{{from.type}}" module may not import the "{{to.type}}" layer (${order}; a module imports its own layer or those below it)`,
          policies: layers.map(({ type, below }) => ({
            from: { element: { type } },
            allow: { to: { element: { types: { anyOf: [type, ...below] } } } },
          })),
        },
      ],
      // Every src module is in a layer: a new folder must be placed in one before it passes.
      'boundaries/no-unknown-files': 'error',
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
    },
  },
);
