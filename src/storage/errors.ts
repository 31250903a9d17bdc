// Typed errors of the storage layer. A replica matches on the class, an operator reads the message.
import { diskSpaceNote, isWriteFailure } from './disk-space.ts';

export class StorageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * The data on disk is damaged or inconsistent. The replica must refuse to serve: it cannot tell
 * which of its records are still right.
 */
export class StorageCorruptionError extends StorageError {
  readonly file: string;
  /** The log index involved, when the damage concerns one (undefined for other records). */
  readonly index: number | undefined;
  /** What is wrong, without the file and index. */
  readonly detail: string;

  constructor(file: string, index: number | undefined, detail: string) {
    super(`storage corruption in ${file}${index === undefined ? '' : ` at log index ${index}`}: ${detail}`);
    this.file = file;
    this.index = index;
    this.detail = detail;
  }
}

/** A key or value exceeds the configured limit; raised before anything is proposed. */
export class TooLargeError extends StorageError {
  readonly what: 'key' | 'value' | 'scan start' | 'scan end';
  readonly size: number;
  readonly limit: number;

  constructor(what: 'key' | 'value' | 'scan start' | 'scan end', size: number, limit: number) {
    super(`${what} of ${size} bytes exceeds the limit of ${limit} bytes`);
    this.what = what;
    this.size = size;
    this.limit = limit;
  }
}

/** A key the store cannot hold at all (LMDB rejects empty keys). */
export class InvalidKeyError extends StorageError {}

/** A previous write failed; the in-memory view may be ahead of the disk, so the store stops. */
export class StoreFailedError extends StorageError {
  constructor(cause: unknown) {
    super(`the store failed earlier and must be reopened: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.cause = cause;
  }
}

/**
 * A failed LMDB commit, with its cause. lmdb-js rejects every write of a failed commit with
 * "Commit failed (see commitError for details)" and keeps the cause (e.g. ENOSPC) in a promise,
 * `commitError`, that rejects with it: unwatched, that promise is an unhandled rejection, which ends
 * the process (every replica it hosts), and the log line never names the cause.
 */
export async function withCommitCause(e: unknown, dir?: string): Promise<unknown> {
  const pending = (e as { commitError?: unknown } | null)?.commitError;
  if (!(pending instanceof Promise)) return e;
  const cause: unknown = await pending.then(
    () => undefined,
    (c: unknown) => c,
  );
  if (cause === undefined) return e;
  // LMDB reports a short write (a full disk) as EIO: say when the file system is full.
  const note = dir !== undefined && isWriteFailure(cause) ? diskSpaceNote(dir) : '';
  const out = new StorageError(`the LMDB commit failed: ${cause instanceof Error ? cause.message : String(cause)}${note}`);
  out.cause = cause;
  return out;
}

/** `e`, when it is a write the file system refused or cut short, as a StorageError saying `what` and whether the disk is full. */
export function withDiskSpace(e: unknown, dir: string, what: string): unknown {
  if (!isWriteFailure(e)) return e;
  const out = new StorageError(`${what}: ${(e as Error).message}${diskSpaceNote(dir)}`);
  out.cause = e;
  return out;
}
