// Opens the replica's LMDB environment and its named databases, with the durability options chosen
// in docs/storage.md.
import { open, type Database, type RootDatabase, type RootDatabaseOptionsWithPath } from 'lmdb';

export type Bin = Buffer;
/** Keys come back as Buffers; values are written as any Uint8Array (and read back as Buffers). */
export type Db = Database<Uint8Array, Bin>;

/** The state machine image. Two exist; one is live, the other receives incoming snapshots. */
export interface Generation {
  kv: Db;
  sessions: Db;
  meta: Db;
}

export interface Env {
  root: RootDatabase<Bin, Bin>;
  /** index → term, type, data */
  log: Db;
  /** hard state, log base, applied index, live generation, staging progress, format */
  raft: Db;
  generations: readonly [Generation, Generation];
  dataFile: string;
  /** Ends this store's use of the environment (closes it, unless other stores share it). */
  close(): Promise<void>;
}

/** 8 KiB pages: the smallest size at which lmdb-js accepts 4026-byte keys. */
export const PAGE_SIZE = 8192;

/**
 * overlappingSync off: LMDB syncs the data pages, then writes the meta page through its O_DSYNC
 * descriptor, before the commit resolves, so "committed" already means "durable" and a failed
 * fsync fails the commit. See docs/storage.md for the measurements behind this choice.
 */
export const ENV_OPTIONS = {
  pageSize: PAGE_SIZE,
  overlappingSync: false,
  noSync: false,
  noMetaSync: false,
  maxDbs: 16,
  encoding: 'binary',
  keyEncoding: 'binary',
  cache: false,
  // The path is always a directory: lmdb-js otherwise takes one with a dot in its name
  // ("node.1") for the data file itself, and the store never opens.
  noSubdir: false,
} as const satisfies Omit<RootDatabaseOptionsWithPath, 'path'>;

const DB_OPTIONS = { encoding: 'binary', keyEncoding: 'binary' } as const;

export interface EnvTuning {
  trackMetrics?: boolean;
  /** Only for measuring the alternative (bench/storage.ts); the store is tested with it off. */
  overlappingSync?: boolean;
}

export function openRoot(path: string, extra: EnvTuning & { maxDbs?: number } = {}): RootDatabase<Bin, Bin> {
  tolerateBatchCommitPromises();
  return open<Bin, Bin>({ path, ...ENV_OPTIONS, ...extra } as RootDatabaseOptionsWithPath);
}

let tolerating = false;

/**
 * lmdb-js starts each event-turn batch with an instruction of its own whose commit promise nobody
 * holds: when that batch's commit fails, the promise's rejection is unhandled, and Node ends the
 * process (every replica it hosts), though the store's own writes in the batch report the same
 * failure and fail the store (replica-store.ts). That rejection alone is let go; any other
 * unhandled rejection is thrown as Node would without a listener.
 */
function tolerateBatchCommitPromises(): void {
  if (tolerating) return;
  tolerating = true;
  process.on('unhandledRejection', (reason) => {
    if (reason instanceof Error && 'commitError' in reason && reason.message.startsWith('Commit failed')) return;
    throw reason;
  });
}

/** Every named database of the environment. */
export const DATABASES = ['log', 'raft', 'kv.0', 'sessions.0', 'meta.0', 'kv.1', 'sessions.1', 'meta.1'] as const;

/**
 * Opening a named database reads the main B-tree: call this only after the preflight checks.
 * `prefix` names one store among several in a shared environment (shared-env.ts).
 */
export function openDatabases(root: RootDatabase<Bin, Bin>, dataFile: string, prefix = '', close: () => Promise<void> = () => root.close()): Env {
  const db = (name: (typeof DATABASES)[number]): Db => root.openDB<Uint8Array, Bin>(prefix + name, DB_OPTIONS);
  const generation = (g: 0 | 1): Generation => ({
    kv: db(`kv.${g}`),
    sessions: db(`sessions.${g}`),
    meta: db(`meta.${g}`),
  });
  return { root, log: db('log'), raft: db('raft'), generations: [generation(0), generation(1)], dataFile, close };
}

/** The named databases of an environment (the keys of LMDB's main database). */
export function databaseNames(root: RootDatabase<Bin, Bin>): string[] {
  // lmdb-js stores each name with its C string terminator.
  return [...root.getKeys()].map((k) => Buffer.from(k as Uint8Array).toString('utf8').replace(/\0$/, ''));
}

/** What LMDB's meta page says about the file (read from the meta pages only). */
export function envInfo(root: RootDatabase<Bin, Bin>): { pageSize: number; lastPageNumber: number } {
  const stats = root.getStats() as { pageSize: number; lastPageNumber: number };
  return { pageSize: stats.pageSize, lastPageNumber: stats.lastPageNumber };
}
