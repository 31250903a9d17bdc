// Opens a replica's store: checks the files before LMDB maps them, walks the databases, then
// creates the store's records or checks that the data file is the one named beside it.
import fs from 'node:fs';
import { join } from 'node:path';
import { DATABASES, databaseNames, openDatabases, openRoot, type Env } from './env.ts';
import { StorageCorruptionError, StorageError } from './errors.ts';
import { resolveLimits, type Limits } from './limits.ts';
import { checkDataSize, DATA_FILE, ID_FILE, locateFiles, newStoreId, writeId, type StoreFiles } from './preflight.ts';
import { putRaft, readRaft } from './raft-table.ts';
import {
  FORMAT_VERSION,
  RaftKey,
  decodeFormat,
  encodeFormat,
  encodeGeneration,
  encodeHardState,
  encodeIndex,
  decodeIndex,
} from './records.ts';
import { afterMs, CHECKPOINT_MS, ReplicaStore, type Later } from './replica-store.ts';
import { leaseStore, markerPath, newStoreName, readable, readMarker, storeExists, writeMarker, type StoreMarker } from './shared-env.ts';
import { checkStructure } from './structure-check.ts';
import { openFileWal, type OpenedWal } from './wal.ts';

/** The write-ahead log's directory inside a replica's data directory. */
export const WAL_DIR = 'wal';

export interface ReplicaStoreOptions {
  /** Directory of the environment; created if missing. */
  path: string;
  limits?: Partial<Limits>;
  /** Ask LMDB to count time spent in commits and syncs (see metrics()). */
  trackMetrics?: boolean;
  /** lmdb-js overlappingSync; off by default and in every test (docs/storage.md says why). */
  overlappingSync?: boolean;
  /**
   * Walk every database in a child process before opening (default true): damaged LMDB pages
   * then give a StorageCorruptionError instead of a SIGSEGV later. Costs one read of the file.
   */
  checkStructure?: boolean;
  /**
   * Keep a new store in this directory's environment, shared with other replicas' stores
   * (shared-env.ts). Ignored when `path` already holds a store of its own; a store already shared
   * stays where the marker in `path` says.
   */
  sharedData?: string;
  /** How long LMDB's copy of what the log holds may be held back before a commit (default CHECKPOINT_MS, 50 ms). */
  checkpointMs?: number;
}

/**
 * Opens the replica's store wherever it is: in its own environment in `path`, or in a shared
 * environment that the marker in `path` names (created there when `sharedData` is given and
 * `path` holds no store yet).
 */
export async function openStore(options: ReplicaStoreOptions): Promise<ReplicaStore> {
  let marker = readMarker(options.path);
  if (!marker && options.sharedData !== undefined && !holdsOwnStore(options.path)) {
    marker = { envDir: fs.realpathSync(mkdirp(options.sharedData)), store: newStoreName(options.path) };
    writeMarker(options.path, marker);
  }
  return marker ? openSharedStore(options, marker) : openReplicaStore(options);
}

function mkdirp(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

function holdsOwnStore(dir: string): boolean {
  return fs.existsSync(join(dir, DATA_FILE)) || fs.existsSync(join(dir, ID_FILE));
}

async function openSharedStore(options: ReplicaStoreOptions, marker: StoreMarker): Promise<ReplicaStore> {
  const limits = resolveLimits(options.limits);
  if (holdsOwnStore(options.path)) {
    throw new StorageError(`${options.path} holds a store of its own and a marker naming store ${marker.store} in ${marker.envDir}: which one is this replica's?`);
  }
  const lease = await leaseStore(marker.envDir, marker.store, options);
  try {
    const exists = storeExists(lease, marker.store);
    if (!exists && marker.id) {
      throw new StorageCorruptionError(lease.dataFile, undefined, `store ${marker.store} (${marker.id.toString('hex')}), named by ${markerPath(options.path)}, is not in this environment`);
    }
    const env = readable(lease.dataFile, lease.shortfall, () => openDatabases(lease.root, lease.dataFile, `${marker.store}/`, lease.release));
    let format = readable(lease.dataFile, lease.shortfall, () => readRaft(env, RaftKey.format, decodeFormat));
    if (!format) {
      writeFreshRecords(env, newStoreId());
      format = readRaft(env, RaftKey.format, decodeFormat)!;
    }
    if (format.version !== FORMAT_VERSION) {
      throw new StorageError(`${lease.dataFile}: store ${marker.store} has format ${format.version}, this build reads ${FORMAT_VERSION}`);
    }
    const id = Buffer.from(format.id);
    if (!marker.id) writeMarker(options.path, { ...marker, id }); // created now, or the process died before the marker said so
    else if (!marker.id.equals(id)) {
      throw new StorageCorruptionError(lease.dataFile, undefined, `store ${marker.store} is ${id.toString('hex')}, but ${markerPath(options.path)} names ${marker.id.toString('hex')}`);
    }
    return new ReplicaStore(env, limits, lease.shortfall, openLog(options.path, env), afterMs(options.checkpointMs ?? CHECKPOINT_MS));
  } catch (e) {
    await lease.release();
    throw e;
  }
}

export function openReplicaStore(options: ReplicaStoreOptions): ReplicaStore {
  const limits = resolveLimits(options.limits);
  const files = locateFiles(options.path);
  const root = openRoot(options.path, {
    trackMetrics: options.trackMetrics ?? false,
    overlappingSync: options.overlappingSync ?? false,
  });
  try {
    const shortfall = checkDataSize(root, files.dataFile);
    const noted = (e: unknown): unknown =>
      shortfall && e instanceof StorageCorruptionError ? new StorageCorruptionError(e.file, e.index, `${e.detail}; ${shortfall}`) : e;
    if (files.id && options.checkStructure !== false) {
      try {
        checkStructure(options.path, files.dataFile, DATABASES);
      } catch (e) {
        throw noted(e);
      }
      root.readerCheck(); // the walker exits without closing: drop its reader slot, or it pins old pages

    }
    let env: Env;
    try {
      if (files.id && databaseNames(root).includes('env')) {
        throw new StorageError(`${options.path} holds stores shared by several replicas: open one through its replica's directory`);
      }
      env = openDatabases(root, files.dataFile);
    } catch (e) {
      if (e instanceof StorageError) throw e;
      throw noted(new StorageCorruptionError(files.dataFile, undefined, `LMDB cannot open its databases (${(e as Error).message})`));
    }
    initialise(env, files);
    return new ReplicaStore(env, limits, shortfall, openLog(options.path, env), afterMs(options.checkpointMs ?? CHECKPOINT_MS));
  } catch (e) {
    void root.close();
    throw e;
  }
}

/** The replica's write-ahead log, in its own directory, continuing after what LMDB holds. */
function openLog(replicaDir: string, env: Env): OpenedWal {
  return openFileWal(join(replicaDir, WAL_DIR), { after: readRaft(env, RaftKey.walSeq, decodeIndex) ?? 0 });
}

/** Writes the records of a new store, or checks that the data file belongs to the store named beside it. */
function initialise(env: Env, files: StoreFiles): void {
  const format = readRaft(env, RaftKey.format, decodeFormat);
  if (!format) {
    if (files.id) {
      throw new StorageCorruptionError(files.dataFile, undefined, `the data file holds no store, but store ${files.id.toString('hex')} was created here`);
    }
    const id = newStoreId();
    writeFreshRecords(env, id);
    writeId(files, id);
    return;
  }
  if (format.version !== FORMAT_VERSION) {
    throw new StorageError(`${files.dataFile}: store format ${format.version}, this build reads ${FORMAT_VERSION}`);
  }
  const id = Buffer.from(format.id);
  if (!files.id) writeId(files, id); // the process died between creating the store and naming it
  else if (!files.id.equals(id)) {
    throw new StorageCorruptionError(files.dataFile, undefined, `the data file is store ${id.toString('hex')}, but ${files.idFile} names ${files.id.toString('hex')}`);
  }
}

/** The records of a new, empty store, written durably. */
function writeFreshRecords(env: Env, id: Uint8Array): void {
  env.root.transactionSync(() => {
    void putRaft(env, RaftKey.format, encodeFormat(id));
    void putRaft(env, RaftKey.generation, encodeGeneration(0));
    void putRaft(env, RaftKey.applied, encodeIndex(0));
    void putRaft(env, RaftKey.hardState, encodeHardState({ term: 0, vote: 0, commit: 0 }));
  });
}

/**
 * The same store over an environment of a MemoryDisk (memory-env.ts: `disk.open(timing)`, or one
 * store of `disk.openShared(timing)`): what the simulator runs. Reopening the disk after
 * MemoryDisk.crash() finds exactly the synced batches.
 */
export function openMemoryStore(env: Env, limits?: Partial<Limits>, log?: (after: number) => OpenedWal, later?: Later): ReplicaStore {
  if (!readRaft(env, RaftKey.format, decodeFormat)) writeFreshRecords(env, new Uint8Array(16));
  return new ReplicaStore(env, resolveLimits(limits), undefined, log?.(readRaft(env, RaftKey.walSeq, decodeIndex) ?? 0), later);
}
