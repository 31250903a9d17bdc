// LMDB's own pages (branch pages, node headers) carry no checksum: a damaged one can make LMDB
// read out of bounds and the process die of SIGSEGV, with nothing said. So before this process
// maps the file, a child process walks every database; if it dies, the store is reported as
// corrupt instead of this replica crashing on its first read.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { ENV_OPTIONS } from './env.ts';
import { StorageCorruptionError } from './errors.ts';

const LMDB_URL = import.meta.resolve('lmdb');
/** How the walker's stderr line with LMDB's error begins. */
const WALK_FAILED = 'walk failed: ';

// Plain JS, so the child needs no TypeScript loader. Reads every key and value of each database
// (values are copied out, so overflow pages are read too).
const WALKER = `
const [dir, options, ...given] = process.argv.slice(1);
const { open } = await import(${JSON.stringify(LMDB_URL)});
const root = open({ path: dir, ...JSON.parse(options), readOnly: true });
// "all": every database the main one names (a shared environment's stores).
const names = given[0] === 'all' ? [...root.getKeys()].map((k) => Buffer.from(k).toString('utf8').replace(/\\0$/, '')) : given;
let records = 0;
let failed;
try {
  for (const name of names) {
    let db;
    try { db = root.openDB(name, { keyEncoding: 'binary', encoding: 'binary' }); } catch { continue; }
    if (!db) continue; // read-only: a database that is not there is not created
    for (const { key, value } of db.getRange()) records += key.length > 0 && value.length >= 0 ? 1 : 0;
  }
} catch (e) {
  failed = e;
}
// Exit at once: nothing was written, and closing could wait on lmdb-js's threads. LMDB's verdict
// goes out as one line: Node's report of an uncaught error would start with a line of lmdb-js's source.
if (failed !== undefined) process.stderr.write(${JSON.stringify(WALK_FAILED)} + String(failed?.message ?? failed).split('\\n')[0] + '\\n', () => process.exit(2));
else process.stdout.write(String(records), () => process.exit(0));
`;

/** Generous: a walk reads the file once, far faster than this on any disk. */
const BYTES_PER_SECOND_FLOOR = 10e6;

/**
 * How long the walk of a data file of `bytes` may take. A replica opens its doors only after it
 * (src/cluster/start-bound.ts: what a starting pod's /healthz allows, and the manifests' startup probes).
 */
export function structureCheckTimeoutMs(bytes: number): number {
  return Math.ceil(60_000 + (1000 * bytes) / BYTES_PER_SECOND_FLOOR);
}

/** Throws StorageCorruptionError if LMDB cannot walk the databases (or dies trying); 'all': every one there is. */
export function checkStructure(dir: string, dataFile: string, databases: readonly string[] | 'all', maxDbs?: number): void {
  const timeout = structureCheckTimeoutMs(fs.statSync(dataFile).size);
  const r = spawnSync(process.execPath, walkerArgs(dir, databases, maxDbs), { encoding: 'utf8', timeout, killSignal: 'SIGKILL' });
  walkOutcome(dataFile, timeout, (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT', r.error, r.signal, r.status, r.stderr);
}

/**
 * checkStructure without blocking this process's event loop while the child walks (the same
 * child, bound and verdicts): a replica keeps answering its liveness probe meanwhile
 * (src/server/start-probe.ts). Resolves once the walk succeeded.
 */
export function checkStructureAsync(dir: string, dataFile: string, databases: readonly string[] | 'all', maxDbs?: number): Promise<void> {
  const timeout = structureCheckTimeoutMs(fs.statSync(dataFile).size);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, walkerArgs(dir, databases, maxDbs), { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let timedOut = false;
    child.stderr.setEncoding('utf8').on('data', (d: string) => void (stderr = (stderr + d).slice(-64 << 10)));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeout);
    let spawnError: Error | undefined;
    child.on('error', (e) => void (spawnError = e));
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      try {
        walkOutcome(dataFile, timeout, timedOut, spawnError, signal, status, stderr);
        resolve();
      } catch (e) {
        reject(e as Error);
      }
    });
  });
}

function walkerArgs(dir: string, databases: readonly string[] | 'all', maxDbs: number | undefined): string[] {
  const options = maxDbs === undefined ? ENV_OPTIONS : { ...ENV_OPTIONS, maxDbs };
  return ['--input-type=module', '-e', WALKER, dir, JSON.stringify(options), ...(databases === 'all' ? ['all'] : databases)];
}

function walkOutcome(dataFile: string, timeout: number, timedOut: boolean, error: Error | undefined, signal: NodeJS.Signals | null, status: number | null, stderr: string): void {
  if (timedOut) {
    throw new StorageCorruptionError(dataFile, undefined, `LMDB did not finish walking the databases in ${Math.round(timeout / 1000)} s (a cycle in damaged pages?)`);
  }
  if (error) throw error;
  if (signal) {
    throw new StorageCorruptionError(dataFile, undefined, `LMDB crashed (${signal}) walking the databases: the page structure is damaged`);
  }
  if (status !== 0) {
    const lines = stderr.trim().split('\n');
    const why = lines.find((l) => l.startsWith(WALK_FAILED))?.slice(WALK_FAILED.length) ?? lines.find((l) => /^\w*Error\b|MDB_/.test(l)) ?? stderr.trim().slice(0, 300);
    throw new StorageCorruptionError(dataFile, undefined, `LMDB cannot walk the databases (${why})`);
  }
}
