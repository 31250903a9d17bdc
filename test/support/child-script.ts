// Child processes of tests, started from one bundled file. Through tsx's loader a child spends ~1 s
// before its first line (loading the loader, then compiling every source it imports); bundled once
// per test process into one ES module, with packages left to node_modules, it starts in ~0.15 s.
// The storage crash test alone starts over a hundred children, so this is minutes of `make test`.
import { buildSync } from 'esbuild';
import fs from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';

// Inside node_modules, so that the bundle's imports of packages (lmdb) resolve as the sources' do.
const OUT_DIR = fileURLToPath(new URL('../../node_modules/.cache/kvs-test-children/', import.meta.url));
const bundles = new Map<string, string>();

process.on('exit', () => {
  for (const file of bundles.values()) fs.rmSync(file, { force: true });
});

/** Arguments for `spawn(process.execPath, ...)` that run the TypeScript file `script`. */
export function childArgs(script: string): string[] {
  let file = bundles.get(script);
  if (!file) {
    // One file per test process: test files running at once never write each other's bundle.
    file = `${OUT_DIR}${basename(script, '.ts')}-${process.pid}.mjs`;
    buildSync({ entryPoints: [script], outfile: file, bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', sourcemap: 'inline', logLevel: 'error' });
    bundles.set(script, file);
  }
  return ['--enable-source-maps', file];
}
