// Checks on the files before LMDB maps them. LMDB trusts its file: a page beyond the end of a
// truncated file is touched through mmap and the process dies of SIGBUS instead of reporting.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { join } from 'node:path';
import type { RootDatabase } from 'lmdb';
import { envInfo, PAGE_SIZE, type Bin } from './env.ts';
import { StorageCorruptionError, StorageError } from './errors.ts';
import { diskSpaceNote, freeBytes, OPEN_FLOOR_BYTES } from './disk-space.ts';

export interface StoreFiles {
  dir: string;
  dataFile: string;
  /** Sidecar naming the store; its presence proves a store existed here. */
  idFile: string;
  /** The id recorded in the sidecar, if the store was created. */
  id: Buffer | undefined;
}

/** LMDB's data file, and the sidecar naming the store (or shared environment) in it. */
export const DATA_FILE = 'data.mdb';
export const ID_FILE = 'replica.id';
const LOCK_FILE = 'lock.mdb';

export function locateFiles(dir: string): StoreFiles {
  fs.mkdirSync(dir, { recursive: true });
  const dataFile = join(dir, DATA_FILE);
  const idFile = join(dir, ID_FILE);
  let id: Buffer | undefined;
  try {
    id = parseId(idFile, fs.readFileSync(idFile, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (id) {
    // LMDB would silently initialise a fresh, empty store in place of a missing or emptied file.
    const size = fileSize(dataFile);
    if (size === undefined) throw new StorageCorruptionError(dataFile, undefined, `the data file is missing (store ${id.toString('hex')} was created here)`);
    if (size < 2 * PAGE_SIZE) throw new StorageCorruptionError(dataFile, undefined, `the data file is truncated to ${size} bytes, too short for LMDB's meta pages`);
  }
  return { dir, dataFile, idFile, id };
}

/**
 * Refuses to create an environment in `dir` on a full file system, where LMDB would crash
 * (disk-space.ts). One already there opens (to be read; its first write fails, saying why).
 */
export function checkRoomToOpen(dir: string): void {
  if ((fileSize(join(dir, DATA_FILE)) ?? 0) > 0 && fileSize(join(dir, LOCK_FILE)) !== undefined) return;
  const free = freeBytes(dir);
  if (free === undefined || free >= OPEN_FLOOR_BYTES) return;
  throw new StorageError(`cannot open the store in ${dir}: LMDB needs free space to open it${diskSpaceNote(dir)}`);
}

/** The sidecar names a store by its 16-byte id in hex, written whole (tmp, fsync, rename). */
function parseId(idFile: string, text: string): Buffer {
  const hex = text.trim();
  // Any case: read as hex before, an uppercase id named its store, and still does.
  if (/^[0-9a-f]{32}$/i.test(hex)) return Buffer.from(hex, 'hex');
  // Damage: read as hex it named a store "" (an empty id), and the refusal said nothing of the file.
  throw new StorageCorruptionError(
    idFile,
    undefined,
    `the file is damaged: ${JSON.stringify(text.slice(0, 40))} is not a store id (32 hex digits). It names the store that ${DATA_FILE} beside it must be; remove it only if that data file is known to be the right one (the next start writes it again from the data file), else remove the replica's whole data directory so it rejoins its group empty`,
  );
}

/**
 * Compares the file with the size LMDB's meta page says it uses. A shorter file is usually
 * truncated, but LMDB may also legitimately leave the last pages unwritten (pages freed in the
 * transaction that allocated them). Either way, the missing tail is zero-filled, so that no read
 * can fault, and the caller must verify every record: zero pages in use fail LMDB's page checks
 * or the record checksums. Returns a description of the shortfall, or undefined.
 */
export function checkDataSize(root: RootDatabase<Bin, Bin>, dataFile: string): string | undefined {
  const { pageSize, lastPageNumber } = envInfo(root);
  const expected = (lastPageNumber + 1) * pageSize;
  const size = fileSize(dataFile) ?? 0;
  if (size >= expected) return undefined;
  fs.truncateSync(dataFile, expected);
  return `the data file was ${size} bytes but its last transaction uses ${expected} bytes (truncated?)`;
}

/** Records a new store's id beside its data file, durably. */
export function writeId(files: StoreFiles, id: Buffer): void {
  writeFileDurably(files.dir, files.idFile, `${id.toString('hex')}\n`);
}

/** Opens `path`, runs `use` on the descriptor, then closes it whatever happened. */
export function withFile<T>(path: string, flags: string, use: (fd: number) => T): T {
  const fd = fs.openSync(path, flags);
  try {
    return use(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Makes the directory's entries (files created, renamed or removed in it) durable. */
export function syncDir(dir: string): void {
  withFile(dir, 'r', (fd) => fs.fsyncSync(fd));
}

/** Replaces `path` (in directory `dir`) with `text`, durably: write, fsync, rename, fsync the directory. */
export function writeFileDurably(dir: string, path: string, text: string): void {
  const tmp = `${path}.tmp`;
  withFile(tmp, 'w', (fd) => {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  });
  fs.renameSync(tmp, path);
  syncDir(dir);
}

export function newStoreId(): Buffer {
  return randomBytes(16);
}

function fileSize(path: string): number | undefined {
  try {
    return fs.statSync(path).size;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}
