// `kvs bench`: the load generator lives in bench/ (it also drives etcd and Redis, and its worker
// processes run TypeScript through tsx), so it is a tool of a source checkout, not of the package.
// In a checkout this runs bench/load.ts with tsx; installed from npm it says where to get it.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ExitCode, UsageError } from './args.ts';

/** The repository root: the parent of src/ (run through tsx) and of dist/ (compiled). */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** bench/load.ts and tsx's loader (as a URL: `--import` then works from any directory), if present. */
export function benchEntry(root = ROOT): { script: string; tsx: string } | undefined {
  const script = `${root}bench/load.ts`;
  if (!existsSync(script)) return undefined;
  try {
    return { script, tsx: import.meta.resolve('tsx') };
  } catch {
    return undefined; // a checkout without its dev dependencies
  }
}

export async function runBenchFromCheckout(argv: string[]): Promise<number> {
  const entry = benchEntry();
  if (!entry) {
    throw new UsageError('"kvs bench" runs from a source checkout of sharded-kvs with its dev dependencies (npm ci; see docs/benchmarks.md): it is not part of the installed package');
  }
  const child = spawn(process.execPath, ['--import', entry.tsx, entry.script, ...argv], { cwd: process.cwd(), stdio: 'inherit' });
  const forward = (signal: NodeJS.Signals): void => void child.kill(signal);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? (signal ? ExitCode.Failed : ExitCode.Ok)));
  });
}
