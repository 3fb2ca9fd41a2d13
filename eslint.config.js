// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importPlugin from 'eslint-plugin-import';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

// Dependencies point one way: schemas <- sot <- activities <- agent / server <- cli (workflows
// import schemas and, as types only, activities; see the workflows block below). A zone's `from`
// of '.' with `except` lists what a layer may import, so a new top-level folder is forbidden until
// someone decides where it sits. Imports that do not resolve (Node built-ins) are never checked.
const layerZones = [
  {
    target: ['./workflows', './activities', './agent', './server', './cli', './bin'],
    from: ['./scripts', './test'],
    message: 'Layers: product code never imports scripts/ or test/.',
  },
  {
    target: './schemas',
    from: '.',
    except: ['./schemas', './node_modules'],
    message: 'Layers: schemas/ imports nothing of the project but schemas/.',
  },
  {
    target: './sot',
    from: '.',
    except: ['./schemas', './sot', './node_modules'],
    message: 'Layers: sot/ imports only schemas/ and sot/.',
  },
  {
    target: './activities',
    from: ['./agent', './server', './cli', './workflows'],
    message: 'Layers: activities/ sit below agent/, server/, cli/ and workflows/ and import none of them.',
  },
  {
    target: './agent',
    from: ['./server', './cli'],
    message: 'Layers: agent/ never imports server/ or cli/ (cli/standalone.ts composes both).',
  },
  {
    target: './server',
    from: ['./agent', './cli'],
    message: 'Layers: server/ never imports agent/ or cli/ (cli/standalone.ts composes both).',
  },
];

export default tseslint.config(
  { ignores: ['node_modules/**', 'schemas/json/**', 'test/fixtures/**', 'coverage/**', '.vaquero/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { import: importPlugin },
    settings: { 'import/resolver': { node: { extensions: ['.ts', '.js', '.mjs'] } } },
    rules: {
      // node:test's test() and describe() return promises the runner itself tracks.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] },
          ],
        },
      ],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'import/no-cycle': 'error',
      'import/no-restricted-paths': ['error', { basePath: import.meta.dirname, zones: layerZones }],
    },
  },
  {
    // Product files stay small enough to read in one sitting; tests and scripts are exempt.
    files: ['{schemas,sot,workflows,activities,agent,server,cli}/**/*.ts'],
    rules: { 'max-lines': ['error', { max: 320, skipBlankLines: true, skipComments: true }] },
  },
  {
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins.map((name) => ({
            name,
            message: 'Workflows must be deterministic: no Node built-ins (use activities).',
          })),
          patterns: [
            {
              group: ['**/activities/*', '**/server/*', '**/agent/*'],
              allowTypeImports: true,
              message: 'Workflows import activities as types only.',
            },
            {
              // A workflow runs each module it imports afresh per workflow: zod's schemas cost most of
              // a host workflow's CPU (issue 12). Values come from schemas/runtime.ts.
              group: ['zod', '**/schemas/*', '!**/schemas/runtime', '!**/schemas/search-attributes'],
              allowTypeImports: true,
              message:
                'Workflows import schemas as types only; values come from schemas/runtime.ts (no zod).',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: { process: 'readonly', console: 'readonly', URL: 'readonly' },
    },
  },
);
