import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import tseslint from 'typescript-eslint';
import { layerRule } from './test/architecture/layers.js';

// The layers of src/ (docs/architecture.md): a file imports only its own folder and lower layers.
const kvs = { rules: { layers: layerRule(join(dirname(fileURLToPath(import.meta.url)), 'src')) } };

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'packages/*/dist/', 'data/', '.tmp/', 'native/build/', 'ebpf/build/', 'bench/results/'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
      eqeqeq: ['error', 'always'],
    },
  },
  {
    files: ['src/**/*.ts'],
    plugins: { kvs },
    rules: { 'kvs/layers': 'error' },
  },
);
