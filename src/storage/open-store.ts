// Opens a replica's store: checks the files before LMDB maps them, walks the databases, then
// creates the store's records or checks that the data file is the one named beside it, and that
// the store is the replica's that asks for it.
import fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import type { RootDatabase } from 'lmdb';
import { DATABASES, databaseNames, openDatabases, openRoot, type Bin, type Env } from './env.ts';
import { StorageCorruptionError, StorageError } from './errors.ts';
import { resolveLimits, type Limits } from './limits.ts';
import { checkDataSize, checkRoomToOpen, DATA_FILE, ID_FILE, locateFiles, newStoreId, writeId, type StoreFiles } from './preflight.ts';
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
  Reader,
  Writer,
} from './records.ts';
import { afterMs, CHECKPOINT_MS, ReplicaStore, type Later } from './replica-store.ts';
import { leaseStore, markerPath, newStoreName, readable, readMarker, storeExists, writeMarker, type StoreMarker } from './shared-env.ts';
import { checkStructure, checkStructureAsync } from './structure-check.ts';
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
  /**
   * The replica this store is: recorded in the store when it is created (or, for a store written
   * before stores recorded it, when first opened with it), and every later open with another one
   * is refused (StoreIdentityError). Omitted (tools, tests): neither recorded nor checked.
   */
  identity?: StoreIdentity;
}

/** Which replica of which Raft group a store belongs to. */
export interface StoreIdentity {
  group: number;
  replica: number;
}

/** A replica asked for a store that is another replica's (swapped --id/--group/--data). */
export class StoreIdentityError extends StorageError {
  readonly dir: string;
  readonly held: StoreIdentity;
  readonly asked: StoreIdentity;

  constructor(dir: string, held: StoreIdentity, asked: StoreIdentity, where = '') {
    super(
      `${dir} holds the store of replica ${held.replica} of group ${held.group}${where}, but this server was started as replica ${asked.replica} of group ${asked.group} ` +
        `(--id ${asked.replica} --group ${asked.group}); refusing to run one replica on another's data: start replica ${held.replica} of group ${held.group} with this directory, or give replica ${asked.replica} of group ${asked.group} its own --data directory`,
    );
    this.dir = dir;
    this.held = held;
    this.asked = asked;
  }
}

/** Key of the identity record in the `raft` database: `group u64 ‖ replica u64`. */
const IDENTITY_KEY = Buffer.from('identity');

function encodeIdentity(id: StoreIdentity): Buffer {
  return new Writer().u64(id.group).u64(id.replica).done();
}

function decodeIdentity(body: Uint8Array): StoreIdentity {
  const r = new Reader(body);
  const id = { group: r.u64(), replica: r.u64() };
  r.end();
  return id;
}

/**
 * Opens the replica's store wherever it is: in its own environment in `path`, or in a shared
 * environment that the marker in `path` names (created there when `sharedData` is given and
 * `path` holds no store yet).
 */
export async function openStore(options: ReplicaStoreOptions): Promise<ReplicaStore> {
  let marker = readMarker(options.path);
  if (!marker && options.sharedData !== undefined && !holdsOwnStore(options.path)) {
    checkRoomToOpen(mkdirp(options.path)); // else the marker's write fails with a bare ENOSPC
    // Before the marker: left behind by a refused start, it would keep the store the refusal
    // says to restore from opening ("a store of its own and a marker").
    refuseStrayLog(options.path, join(options.path, DATA_FILE));
    marker = { envDir: fs.realpathSync(mkdirp(options.sharedData)), store: newStoreName(options.path) };
    writeMarker(options.path, marker);
  }
  return marker ? openSharedStore(options, marker) : openReplicaStoreAsync(options);
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
  checkMetaPages(join(marker.envDir, DATA_FILE));
  let lease;
  try {
    lease = await leaseStore(marker.envDir, marker.store, options);
  } catch (e) {
    throw openFailure(marker.envDir, e);
  }
  try {
    const exists = storeExists(lease, marker.store);
    if (!exists && marker.id) {
      throw new StorageCorruptionError(lease.dataFile, undefined, `store ${marker.store} (${marker.id.toString('hex')}), named by ${markerPath(options.path)}, is not in this environment`);
    }
    const env = readable(lease.dataFile, lease.shortfall, () => openDatabases(lease.root, lease.dataFile, `${marker.store}/`, lease.release));
    let format = readable(lease.dataFile, lease.shortfall, () => readRaft(env, RaftKey.format, decodeFormat));
    if (!format) {
      refuseStrayLog(options.path, lease.dataFile);
      writeFreshRecords(env, newStoreId(), options.identity);
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
    checkIdentity(env, options.path, options.identity, ` (store ${marker.store} in ${marker.envDir})`);
    return new ReplicaStore(env, limits, lease.shortfall, openLog(options.path, env), afterMs(options.checkpointMs ?? CHECKPOINT_MS));
  } catch (e) {
    await lease.release();
    throw e;
  }
}

export function openReplicaStore(options: ReplicaStoreOptions): ReplicaStore {
  const o = openRootOf(options);
  try {
    if (o.walk) {
      try {
        checkStructure(options.path, o.files.dataFile, DATABASES);
      } catch (e) {
        throw o.noted(e);
      }
    }
    return finishReplicaStore(options, o);
  } catch (e) {
    void o.root.close();
    throw e;
  }
}

/**
 * openReplicaStore with the walk's child awaited instead of waited for: the process's event loop
 * runs meanwhile, so a starting replica answers its liveness probe during a long walk.
 */
async function openReplicaStoreAsync(options: ReplicaStoreOptions): Promise<ReplicaStore> {
  const o = openRootOf(options);
  try {
    if (o.walk) {
      try {
        await checkStructureAsync(options.path, o.files.dataFile, DATABASES);
      } catch (e) {
        throw o.noted(e);
      }
    }
    return finishReplicaStore(options, o);
  } catch (e) {
    void o.root.close();
    throw e;
  }
}

interface OpenedRoot {
  limits: Limits;
  files: StoreFiles;
  root: RootDatabase<Bin, Bin>;
  shortfall: string | undefined;
  /** The store exists and its structure is to be walked before its databases are opened. */
  walk: boolean;
  noted: (e: unknown) => unknown;
}

/** The store's files checked and its environment opened (its missing tail zero-filled), not yet its databases. */
function openRootOf(options: ReplicaStoreOptions): OpenedRoot {
  const limits = resolveLimits(options.limits);
  const files = locateFiles(options.path);
  checkRoomToOpen(options.path);
  checkMetaPages(files.dataFile);
  let root: RootDatabase<Bin, Bin>;
  try {
    root = openRoot(options.path, {
      trackMetrics: options.trackMetrics ?? false,
      overlappingSync: options.overlappingSync ?? false,
    });
  } catch (e) {
    throw openFailure(options.path, e);
  }
  try {
    const shortfall = checkDataSize(root, files.dataFile);
    const noted = (e: unknown): unknown =>
      shortfall && e instanceof StorageCorruptionError ? new StorageCorruptionError(e.file, e.index, `${e.detail}; ${shortfall}`) : e;
    return { limits, files, root, shortfall, walk: !!files.id && options.checkStructure !== false, noted };
  } catch (e) {
    void root.close();
    throw e;
  }
}

function finishReplicaStore(options: ReplicaStoreOptions, o: OpenedRoot): ReplicaStore {
  const { files, root, shortfall, noted } = o;
  if (o.walk) root.readerCheck(); // the walker exits without closing: drop its reader slot, or it pins old pages
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
  initialise(env, files, options.identity);
  checkIdentity(env, options.path, options.identity);
  return new ReplicaStore(env, o.limits, shortfall, openLog(options.path, env), afterMs(options.checkpointMs ?? CHECKPOINT_MS));
}

/**
 * The replica's write-ahead log, in its own directory, continuing after what LMDB holds. LMDB's
 * walSeq record says the log exists: the first open writes it (0) once the directory is durable,
 * and checkpoints move it on. A directory missing then was removed, with whatever synced records
 * LMDB did not hold yet (acknowledged writes): refused, not recreated empty.
 */
function openLog(replicaDir: string, env: Env): OpenedWal {
  const dir = join(replicaDir, WAL_DIR);
  const held = readRaft(env, RaftKey.walSeq, decodeIndex);
  if (held !== undefined && !fs.existsSync(dir)) {
    throw new StorageCorruptionError(
      dir,
      undefined,
      `the write-ahead log directory is missing (LMDB holds its records through ${held}; any synced after that are lost with it): restore it, or remove the replica's whole data directory so it rejoins its group empty`,
    );
  }
  const opened = openFileWal(dir, { after: held ?? 0, existing: held !== undefined });
  if (held === undefined) env.root.transactionSync(() => void putRaft(env, RaftKey.walSeq, encodeIndex(0)));
  return opened;
}

/**
 * A new store's directory holds no log records: a log there is another store's, whose data file was
 * removed or replaced. Replayed into the new store it would lack what that store wrote to LMDB
 * alone (suffix overwrites, snapshot installs, compactions), so entries a newer term had replaced
 * would come back. Empty segments are a first start's, killed before its first write.
 */
function refuseStrayLog(replicaDir: string, dataFile: string): void {
  const dir = join(replicaDir, WAL_DIR);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  const used = names.filter((n) => n.endsWith('.log') && fs.statSync(join(dir, n)).size > 0).sort();
  if (used.length === 0) return;
  throw new StorageCorruptionError(
    dir,
    undefined,
    `the write-ahead log holds records (${used.join(', ')}), but ${dataFile} holds no store: the log is that of a store whose data file was removed or replaced, and is not replayed into a new one: restore that data file (with its replica.id), or remove the replica's whole data directory so it rejoins its group empty`,
  );
}

/** Writes the records of a new store, or checks that the data file belongs to the store named beside it. */
function initialise(env: Env, files: StoreFiles, identity: StoreIdentity | undefined): void {
  const format = readRaft(env, RaftKey.format, decodeFormat);
  if (!format) {
    if (files.id) {
      throw new StorageCorruptionError(files.dataFile, undefined, `the data file holds no store, but store ${files.id.toString('hex')} was created here`);
    }
    refuseStrayLog(files.dir, files.dataFile);
    const id = newStoreId();
    writeFreshRecords(env, id, identity);
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
function writeFreshRecords(env: Env, id: Uint8Array, identity?: StoreIdentity): void {
  env.root.transactionSync(() => {
    void putRaft(env, RaftKey.format, encodeFormat(id));
    void putRaft(env, RaftKey.generation, encodeGeneration(0));
    void putRaft(env, RaftKey.applied, encodeIndex(0));
    void putRaft(env, RaftKey.hardState, encodeHardState({ term: 0, vote: 0, commit: 0 }));
    if (identity) void putRaft(env, IDENTITY_KEY, encodeIdentity(identity));
  });
}

/**
 * Refuses a store that is another replica's. A store without the record (created before stores
 * recorded it, or by a tool that gave none) gets the asker's: that start trusts its flags as every
 * start did before, and the record only keeps later starts to the same replica (docs/storage.md).
 * Runs before the write-ahead log is opened, so a refused start touches nothing of the store.
 */
function checkIdentity(env: Env, dir: string, asked: StoreIdentity | undefined, where = ''): void {
  if (!asked) return;
  const held = readRaft(env, IDENTITY_KEY, decodeIdentity);
  if (!held) {
    env.root.transactionSync(() => void putRaft(env, IDENTITY_KEY, encodeIdentity(asked)));
    return;
  }
  if (held.group !== asked.group || held.replica !== asked.replica) throw new StoreIdentityError(dir, held, asked, where);
}

// LMDB's meta pages, as mdb.c lays them out (lmdb-js 3.x, data version 2): a 24-byte page header
// (flags at byte 18), then the meta: magic, version, ..., the page size at byte 48.
const P_META = 0x08;
const MDB_MAGIC = 0xbeefc0de;
const MDB_DATA_VERSION = 2;
const META_BYTES = 52;

/**
 * LMDB's first check of a data file, made before LMDB's own: both meta pages must be meta pages
 * with LMDB's magic and data version. LMDB refuses a file whose first meta page fails this
 * (MDB_INVALID, MDB_VERSION_MISMATCH), but lmdb-js 3.5 then frees its environment twice and the
 * process dies of SIGSEGV with nothing said; a bad second meta page LMDB may even pick (by its
 * transaction id) and read garbage through. An empty or missing file is a new environment.
 */
function checkMetaPages(dataFile: string): void {
  let fd: number;
  try {
    fd = fs.openSync(dataFile, 'r');
  } catch {
    return; // missing (a new environment), or unreadable: LMDB's open reports that (openFailure)
  }
  try {
    if (!fs.fstatSync(fd).isFile()) return;
    const size = fs.fstatSync(fd).size;
    if (size === 0) return;
    const page = (n: number, offset: number): string | undefined => {
      const buf = Buffer.alloc(META_BYTES);
      const got = fs.readSync(fd, buf, 0, META_BYTES, offset);
      if (got < META_BYTES) return `meta page ${n} is cut short (the file is ${size} bytes)`;
      if ((buf.readUInt16LE(18) & P_META) === 0) return `page ${n} is not a meta page`;
      const magic = buf.readUInt32LE(24);
      if (magic !== MDB_MAGIC) return `meta page ${n} has magic 0x${magic.toString(16)}, not LMDB's 0x${MDB_MAGIC.toString(16)}`;
      const version = buf.readUInt32LE(28) & 0xffff;
      if (version !== MDB_DATA_VERSION) return `meta page ${n} says data version ${version}, this LMDB reads ${MDB_DATA_VERSION}`;
      return undefined;
    };
    const first = page(0, 0);
    if (first) throw metaDamage(dataFile, first);
    const pageSize = Buffer.alloc(4);
    fs.readSync(fd, pageSize, 0, 4, 48);
    const psize = pageSize.readUInt32LE(0);
    if (psize < 512 || psize > 65536 || (psize & (psize - 1)) !== 0) throw metaDamage(dataFile, `meta page 0 gives a page size of ${psize}`);
    const second = page(1, psize);
    if (second) throw metaDamage(dataFile, second);
  } finally {
    fs.closeSync(fd);
  }
}

function metaDamage(dataFile: string, what: string): StorageCorruptionError {
  return new StorageCorruptionError(dataFile, undefined, `LMDB cannot open the environment (${what}): its meta pages are damaged`);
}

/** LMDB's error codes that mean the file is not a sound LMDB file (mdb.c: MDB_INVALID ... MDB_PAGE_NOTFOUND). */
const LMDB_DAMAGE = new Set([-30793, -30794, -30795, -30796, -30797]);

/**
 * What opening the environment in `dir` failed of: corruption only when LMDB says the file is
 * damaged; the others (permissions, a lock, a path that is a file or a directory) keep LMDB's
 * message with the directory and the system error's name.
 */
function openFailure(dir: string, e: unknown): unknown {
  if (e instanceof StorageError || !(e instanceof Error)) return e;
  const code = (e as { code?: unknown }).code;
  if (typeof code !== 'number') return e; // Node's own errors (mkdir, open) name their path already
  const dataFile = join(dir, DATA_FILE);
  if (LMDB_DAMAGE.has(code)) return new StorageCorruptionError(dataFile, undefined, `LMDB cannot open the environment (${e.message})`);
  const name = Object.entries(osConstants.errno).find(([, n]) => n === code)?.[0];
  let hint = '';
  if (name === 'EISDIR') hint = `: ${dataFile} is a directory`;
  else if (name === 'EACCES' || name === 'EPERM') hint = `: this process may not read and write ${dataFile} and its lock file`;
  else if (name === 'EAGAIN' || name === 'EBUSY') hint = ': the environment is locked or busy (another process?)';
  const err = new StorageError(`cannot open the LMDB environment in ${dir}: ${e.message}${name ? ` (${name})` : ''}${hint}`);
  err.cause = e;
  return err;
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
