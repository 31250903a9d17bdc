// A write-ahead log in files: records appended with one write each, made durable by one fdatasync
// for everything appended since the last one (group commit). It holds what must survive a crash
// before the state machine's store has it durably; the caller releases what that store holds.
//
// Files: `wal-<first seq, 16 hex digits>.log` in one directory, each a run of records (wal-codec.ts).
// A segment is closed (synced, never written again) when the next would pass `segmentBytes`, so
// only the newest can end in a torn record. Opening cuts the newest at its first bad record and
// truncates the file there, so nothing an earlier life wrote past that point can ever be read back
// as a continuation. Damage anywhere else is corruption: it is reported, never skipped. So is a
// bad record in the newest segment that an intact later record of this log follows, unless the
// damage holds a run of zeros to a sector's end (blocks a power loss left unwritten, which writeback
// out of order can leave before a written one): a flipped bit there would otherwise cut records
// that were synced and acknowledged (found in review, 2026-12-07).
import fs from 'node:fs';
import { dirname, join } from 'node:path';
import { StorageCorruptionError, StorageError } from './errors.ts';
import { syncDir, withFile } from './preflight.ts';
import { RECORD_HEADER_BYTES, decodeRecord, encodeRecord, recordBytes, type WalRecord } from './wal-codec.ts';
import { readU64 } from './bytes.ts';

export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
const SEGMENT = /^wal-([0-9a-f]{16})\.log$/;

/** What the store needs of a log; the file log below and the simulator's memory log have it. */
export interface Wal {
  /** The sequence number of the last record appended (0: none yet). */
  readonly lastSeq: number;
  /**
   * Writes one record now. `durable` settles once it, and every record before it, is synced;
   * records appended while a sync runs share the next one. After a failed sync the log refuses
   * every further append: what reached the disk is unknown.
   */
  append(payload: Uint8Array): { seq: number; durable: Promise<void> };
  /** Records up to `seq` are held durably elsewhere: closed segments wholly before it are deleted. */
  release(seq: number): void;
  close(): Promise<void>;
}

export interface OpenedWal {
  wal: Wal;
  /** Every record found, in sequence order. */
  records: WalRecord[];
}

export interface FileWalOptions {
  segmentBytes?: number;
  /**
   * The store holds every record through this one (default 0): the log continues after it, or
   * after its own last record if that is later. Segments holding nothing later are dropped.
   */
  after?: number;
}

interface Segment {
  first: number;
  path: string;
}

const segmentName = (first: number): string => `wal-${first.toString(16).padStart(16, '0')}.log`;

/** Opens (creating if needed) the log in `dir` and reads back every record in it. */
export function openFileWal(dir: string, opts: FileWalOptions = {}): OpenedWal {
  // A new directory's own entry is durable only once its parent is synced: without that, a power
  // loss could take the whole log with it, segments synced or not.
  if (fs.mkdirSync(dir, { recursive: true }) !== undefined) syncDir(dirname(dir));
  const segments = fs
    .readdirSync(dir)
    .flatMap((name) => {
      const m = SEGMENT.exec(name);
      return m ? [{ first: Number.parseInt(m[1]!, 16), path: join(dir, name) }] : [];
    })
    .sort((a, b) => a.first - b.first);
  const records: WalRecord[] = [];
  let expected: number | undefined;
  let activeSize = 0;
  segments.forEach((seg, i) => {
    if (expected !== undefined && seg.first !== expected) {
      throw new StorageCorruptionError(seg.path, undefined, `the log segment starts at record ${seg.first}, but the previous one ends at ${expected - 1}`);
    }
    const bytes = fs.readFileSync(seg.path);
    const last = i === segments.length - 1;
    let offset = 0;
    let seq = seg.first;
    for (;;) {
      const r = decodeRecord(bytes, offset);
      if (r.kind === 'end') {
        if (offset < bytes.length && !last) {
          throw new StorageCorruptionError(seg.path, undefined, `${r.reason} at byte ${offset} of a closed log segment`);
        }
        if (offset < bytes.length) refuseDamageBeforeIntact(seg.path, bytes, offset, seq, opts.after ?? 0, r.reason);
        break;
      }
      if (r.record.seq !== seq) {
        if (!last) throw new StorageCorruptionError(seg.path, undefined, `record ${r.record.seq} at byte ${offset} where record ${seq} belongs`);
        refuseDamageBeforeIntact(seg.path, bytes, offset, seq, opts.after ?? 0, `record ${r.record.seq} where record ${seq} belongs`);
        break; // bytes of an earlier life past the newest record: cut below
      }
      records.push({ seq, payload: Buffer.from(r.record.payload) });
      offset = r.next;
      seq++;
    }
    expected = seq;
    if (last) {
      activeSize = offset;
      if (offset < bytes.length) cutTail(seg.path, offset);
    }
  });
  const after = opts.after ?? 0;
  if (expected !== undefined && expected - 1 < after) {
    // Everything here is held already (the log lost its unsynced tail, or was removed in part).
    for (const seg of segments.splice(0)) fs.rmSync(seg.path, { force: true });
    syncDir(dir);
    records.length = 0;
    expected = undefined;
    activeSize = 0;
  }
  const wal = new FileWal(dir, segments, expected ?? after + 1, activeSize, opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES);
  return { wal, records };
}

/** The unit a disk writes whole: a block a power loss left unwritten reads back as zeros. */
const SECTOR_BYTES = 512;
/** How far past the damage a later record's sequence number may be and still count as this log's. */
const SEQ_WINDOW = 1 << 24;

/**
 * Throws when the bad record at `at` (where record `seq` belongs) is followed by an intact record
 * of this log that the store does not hold (after `after`): cutting there would drop it, and it
 * may have been acknowledged. Torn writes are cut as before: their damage holds zeros up to a
 * sector's end (a block never written).
 */
function refuseDamageBeforeIntact(path: string, bytes: Uint8Array, at: number, seq: number, after: number, reason: string): void {
  const later = intactRecordAfter(bytes, at + 1, Math.max(seq, after + 1));
  if (!later || unwrittenSector(bytes, at, later.offset)) return;
  throw new StorageCorruptionError(
    path,
    undefined,
    `${reason} at byte ${at}, but record ${later.seq} at byte ${later.offset} after it is intact: damage, not a torn write (cutting the log there would lose records that were synced)`,
  );
}

/** The first intact record at or after `from` whose sequence number is `minSeq` or a little more. */
function intactRecordAfter(bytes: Uint8Array, from: number, minSeq: number): { offset: number; seq: number } | undefined {
  for (let o = from; o + RECORD_HEADER_BYTES <= bytes.length; o++) {
    const s = readU64(bytes, o + 8);
    if (s < minSeq || s > minSeq + SEQ_WINDOW) continue; // cheap: most offsets end here
    const r = decodeRecord(bytes, o);
    if (r.kind === 'record' && r.record.seq === s) return { offset: o, seq: s };
  }
  return undefined;
}

/**
 * Whether a whole sector in [from, to) is all zeros. Only whole, aligned sectors: a disk leaves a
 * sector unwritten whole, while the tail of one from `from` on may be a record header's zero high
 * bytes (an outside review's flipped bit 2 bytes after a sector end was cut as a torn write).
 */
function unwrittenSector(bytes: Uint8Array, from: number, to: number): boolean {
  for (let start = Math.ceil(from / SECTOR_BYTES) * SECTOR_BYTES; start < to; start += SECTOR_BYTES) {
    const end = start + SECTOR_BYTES;
    if (end > to) return false;
    let zero = true;
    for (let i = start; i < end && zero; i++) zero = bytes[i] === 0;
    if (zero) return true;
  }
  return false;
}

/** Drops a torn or stale tail for good, before anything new is written after it. */
function cutTail(path: string, length: number): void {
  withFile(path, 'r+', (fd) => {
    fs.ftruncateSync(fd, length);
    fs.fsyncSync(fd);
  });
}

interface Waiter {
  seq: number;
  promise: Promise<void>;
  resolve: () => void;
  reject: (e: unknown) => void;
}

function waiter(seq: number): Waiter {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined); // the caller's `durable` carries the failure
  return { seq, promise, resolve, reject };
}

class FileWal implements Wal {
  /** The newest segment's descriptor; -1 between closing one segment and opening the next. */
  private fd: number;
  private syncing: Waiter | undefined;
  private next: Waiter | undefined;
  private failure: unknown;
  private closed = false;
  /** Descriptors of closed segments that a running sync still uses. */
  private retired: number[] = [];

  constructor(
    private readonly dir: string,
    private readonly segments: Segment[],
    private nextSeq: number,
    private size: number,
    private readonly segmentBytes: number,
  ) {
    if (segments.length === 0) this.segments.push(this.createSegment(nextSeq));
    this.fd = fs.openSync(this.segments.at(-1)!.path, 'r+');
  }

  get lastSeq(): number {
    return this.nextSeq - 1;
  }

  append(payload: Uint8Array): { seq: number; durable: Promise<void> } {
    if (this.closed) throw new StorageError('the log is closed');
    if (this.failure !== undefined) throw new StorageError(`the log failed to sync earlier (${(this.failure as Error).message ?? String(this.failure)})`);
    const bytes = recordBytes(payload.length);
    const seq = this.nextSeq;
    const record = Buffer.allocUnsafe(bytes);
    encodeRecord(record, 0, seq, payload);
    try {
      if (this.size > 0 && this.size + bytes > this.segmentBytes) this.rotate();
      if (fs.writeSync(this.fd, record, 0, bytes, this.size) !== bytes) throw new StorageError(`a short write to the log in ${this.dir}`);
    } catch (e) {
      this.failure ??= e;
      throw e;
    }
    this.size += bytes;
    this.nextSeq++;
    return { seq, durable: this.syncThrough(seq) };
  }

  release(seq: number): void {
    let dropped = false;
    // The newest segment is being written: never dropped.
    while (this.segments.length > 1 && this.segments[1]!.first - 1 <= seq) {
      fs.rmSync(this.segments.shift()!.path, { force: true });
      dropped = true;
    }
    if (dropped) syncDir(this.dir);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([this.syncing?.promise, this.next?.promise]);
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }

  private syncThrough(seq: number): Promise<void> {
    if (!this.syncing) {
      this.syncing = waiter(seq);
      this.startSync();
      return this.syncing.promise;
    }
    // Written after the running sync began: it needs the next one.
    this.next ??= waiter(seq);
    this.next.seq = seq;
    return this.next.promise;
  }

  private startSync(): void {
    const w = this.syncing!;
    fs.fdatasync(this.fd, (err) => {
      this.syncing = undefined;
      for (const fd of this.retired.splice(0)) fs.closeSync(fd);
      if (err) {
        this.failure ??= err;
        w.reject(err);
        this.next?.reject(err);
        this.next = undefined;
        return;
      }
      w.resolve();
      if (this.next) {
        this.syncing = this.next;
        this.next = undefined;
        this.startSync();
      }
    });
  }

  /** Closes the current segment durably before any record goes to the next one. */
  private rotate(): void {
    fs.fdatasyncSync(this.fd);
    const old = this.fd;
    // Closed here, its number may be reused by any file the process opens next: if the next segment
    // cannot be made, close() must not close that number again.
    this.fd = -1;
    if (this.syncing) this.retired.push(old);
    else fs.closeSync(old);
    const seg = this.createSegment(this.nextSeq);
    this.segments.push(seg);
    this.fd = fs.openSync(seg.path, 'r+');
    this.size = 0;
  }

  private createSegment(first: number): Segment {
    const path = join(this.dir, segmentName(first));
    fs.closeSync(fs.openSync(path, 'w'));
    syncDir(this.dir);
    return { first, path };
  }
}
