// Several replicas' stores in one LMDB environment. The replicas one process hosts (kvs up's
// default layout: each process holds a replica of every group) share it, because lmdb-js commits
// everything written in one event-loop turn as one transaction: every hosted group's Ready of a
// turn then costs one commit, one hand-off to the write thread and one flush, not one per group
// (figures in docs/storage.md).
//
// A store is 8 named databases "<store>/log", "<store>/raft", ...; the database "env" holds the
// environment's id, which the replica.id file beside data.mdb repeats, as for a store of its own.
// Which environment and store are a replica's is recorded in the replica's own data directory
// (the marker, shared-store.json): a later start follows the marker, whatever its flags say, so
// a replica never starts empty by mistake, and a new replica never picks up an old store.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import type { RootDatabase } from 'lmdb';
import { databaseNames, openRoot, type Bin, type EnvTuning } from './env.ts';
import { StorageCorruptionError, StorageError } from './errors.ts';
import { checkDataSize, checkRoomToOpen, locateFiles, newStoreId, writeFileDurably, writeId } from './preflight.ts';
import { checkStructure } from './structure-check.ts';

/** Named databases an environment may hold: 8 per store, for kvs up's largest cluster (300 replicas) in one process. */
export const SHARED_MAX_DBS = 8 * 300 + 8;
const ENV_DB = 'env';
const ID_KEY = Buffer.from('id');
const DB_OPTIONS = { encoding: 'binary', keyEncoding: 'binary' } as const;
export const MARKER_FILE = 'shared-store.json';
const STORE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** A replica's marker: its store's environment (absolute), name, and id once created. */
export interface StoreMarker {
  envDir: string;
  store: string;
  id?: Buffer;
}

interface SharedEnv {
  root: RootDatabase<Bin, Bin>;
  dataFile: string;
  shortfall: string | undefined;
  stores: Set<string>;
}

const opened = new Map<string, SharedEnv>();
const closing = new Map<string, Promise<void>>();

export interface StoreLease {
  root: RootDatabase<Bin, Bin>;
  dataFile: string;
  /** Set when the data file was shorter than LMDB expects (preflight.ts). */
  shortfall: string | undefined;
  /** Ends this store's use; the last one closes the environment. */
  release(): Promise<void>;
}

export interface SharedOpenOptions extends EnvTuning {
  checkStructure?: boolean;
}

/** Opens (or joins) the environment in `envDir` for store `store`: one user per store per process. */
export async function leaseStore(envDir: string, store: string, opts: SharedOpenOptions = {}): Promise<StoreLease> {
  const key = resolve(envDir);
  await closing.get(key);
  let env = opened.get(key);
  if (!env) {
    env = openShared(key, opts);
    opened.set(key, env);
  }
  if (env.stores.has(store)) throw new StorageError(`store ${store} in ${key} is already open in this process`);
  env.stores.add(store);
  const shared = env;
  let released = false;
  return {
    root: shared.root,
    dataFile: shared.dataFile,
    shortfall: shared.shortfall,
    release: async () => {
      if (released) return;
      released = true;
      shared.stores.delete(store);
      if (shared.stores.size > 0 || opened.get(key) !== shared) return;
      opened.delete(key);
      const done = shared.root.close();
      closing.set(key, done);
      try {
        await done;
      } finally {
        closing.delete(key);
      }
    },
  };
}

function openShared(dir: string, opts: SharedOpenOptions): SharedEnv {
  const files = locateFiles(dir);
  checkRoomToOpen(dir);
  const root = openRoot(dir, { trackMetrics: opts.trackMetrics ?? false, overlappingSync: opts.overlappingSync ?? false, maxDbs: SHARED_MAX_DBS });
  try {
    const shortfall = checkDataSize(root, files.dataFile);
    if (files.id && opts.checkStructure !== false) {
      try {
        checkStructure(dir, files.dataFile, 'all', SHARED_MAX_DBS);
      } catch (e) {
        if (shortfall && e instanceof StorageCorruptionError) throw new StorageCorruptionError(e.file, e.index, `${e.detail}; ${shortfall}`);
        throw e;
      }
      root.readerCheck(); // the walker exits without closing: drop its reader slot
    }
    const names = readable(files.dataFile, shortfall, () => databaseNames(root));
    if (names.includes('raft')) throw new StorageError(`${dir} holds one replica's store, not stores shared by several replicas`);
    const envDb = root.openDB<Uint8Array, Bin>(ENV_DB, DB_OPTIONS);
    const recorded = readable(files.dataFile, shortfall, () => envDb.get(ID_KEY));
    if (recorded === undefined) {
      if (files.id) {
        throw new StorageCorruptionError(files.dataFile, undefined, `the data file holds no shared stores, but environment ${files.id.toString('hex')} was created here`);
      }
      const id = newStoreId();
      root.transactionSync(() => void envDb.put(ID_KEY, id));
      writeId(files, id);
    } else if (recorded.length !== 16) {
      throw new StorageCorruptionError(files.dataFile, undefined, `the environment's id record is ${recorded.length} bytes, not 16`);
    } else if (!files.id) {
      writeId(files, Buffer.from(recorded)); // the process died between creating the environment and naming it
    } else if (!files.id.equals(recorded)) {
      throw new StorageCorruptionError(files.dataFile, undefined, `the data file is environment ${Buffer.from(recorded).toString('hex')}, but ${files.idFile} names ${files.id.toString('hex')}`);
    }
    return { root, dataFile: files.dataFile, shortfall, stores: new Set() };
  } catch (e) {
    void root.close();
    throw e;
  }
}

/** LMDB's own errors reading a damaged file, as the corruption they are. */
export function readable<T>(dataFile: string, shortfall: string | undefined, read: () => T): T {
  try {
    return read();
  } catch (e) {
    if (e instanceof StorageError) throw e;
    throw new StorageCorruptionError(dataFile, undefined, `LMDB cannot read the environment (${(e as Error).message})${shortfall ? `; ${shortfall}` : ''}`);
  }
}

/** Whether the store named `store` has databases in the leased environment. */
export function storeExists(lease: StoreLease, store: string): boolean {
  return readable(lease.dataFile, lease.shortfall, () => databaseNames(lease.root)).includes(`${store}/raft`);
}

/** A fresh store's name: the replica's directory name, made unique. */
export function newStoreName(replicaDir: string): string {
  const base = basename(resolve(replicaDir)).replace(/[^A-Za-z0-9._-]/g, '_').replace(/^[^A-Za-z0-9]+/, '').slice(0, 80);
  return `${base || 'store'}-${randomBytes(4).toString('hex')}`;
}

export function markerPath(replicaDir: string): string {
  return join(replicaDir, MARKER_FILE);
}

/** The replica's marker, if it has one; a damaged marker is an error, never "no marker". */
export function readMarker(replicaDir: string): StoreMarker | undefined {
  const path = markerPath(replicaDir);
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  let m: { env?: unknown; store?: unknown; id?: unknown };
  try {
    m = JSON.parse(text) as typeof m;
  } catch {
    throw new StorageCorruptionError(path, undefined, 'the shared-store marker is not JSON');
  }
  if (typeof m.env !== 'string' || m.env === '' || typeof m.store !== 'string' || !STORE_NAME.test(m.store)) {
    throw new StorageCorruptionError(path, undefined, 'the shared-store marker lacks a valid "env" and "store"');
  }
  if (m.id !== undefined && (typeof m.id !== 'string' || !/^[0-9a-f]{32}$/.test(m.id))) {
    throw new StorageCorruptionError(path, undefined, 'the shared-store marker\'s "id" is not 32 hex digits');
  }
  return { envDir: resolve(replicaDir, m.env), store: m.store, ...(typeof m.id === 'string' ? { id: Buffer.from(m.id, 'hex') } : {}) };
}

/** Records the replica's store durably; the environment is kept relative, so the whole tree can move. */
export function writeMarker(replicaDir: string, m: StoreMarker): void {
  fs.mkdirSync(replicaDir, { recursive: true });
  const body = { env: relative(resolve(replicaDir), m.envDir) || '.', store: m.store, ...(m.id ? { id: m.id.toString('hex') } : {}) };
  writeFileDurably(replicaDir, markerPath(replicaDir), `${JSON.stringify(body)}\n`);
}
