// A write-ahead log in files: records appended with one write each, made durable by one fdatasync
// for everything appended since the last one (group commit). It holds what must survive a crash
// before the state machine's store has it durably; the caller releases what that store holds.
//
// Files: `wal-<first seq, 16 hex digits>.log` in one directory, each a run of records (wal-codec.ts).
// A segment is closed (synced, sealed, never written again) when the next would pass
// `segmentBytes`, so only the newest can end in a torn record. Opening reads the chain of segments
// from the store's checkpoint on (`after`): a missing record between the checkpoint and the newest
// segment, a gap between segments, or a sealed newest segment (its successor removed) is
// corruption. It cuts the newest segment at a torn record and truncates the file there, so nothing
// an earlier life wrote past that point can ever be read back as a continuation. Torn means caught
// by a crash before its sync returned; a bad record known to be synced (the store holds it, or a
// later intact record says so in its `synced` field) is corruption, reported, never cut: cutting
// would lose acknowledged records (found in review, 2026-12-07).
import fs from 'node:fs';
import { dirname, join } from 'node:path';
import { StorageCorruptionError, StorageError, withDiskSpace } from './errors.ts';
import { syncDir, withFile } from './preflight.ts';
import { LEGACY_HEADER_BYTES, RECORD_HEADER_BYTES, decodeRecord, encodeRecord, encodeSeal, recordBytes, type WalRecord } from './wal-codec.ts';
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
   * The store holds every record through this one (default 0), so the log synced it: the log must
   * reach it and hold the next one, and continues after its own last record. Segments holding
   * nothing later are dropped.
   */
  after?: number;
  /**
   * The log was created before (the store recorded a checkpoint of it): the newest segment is never
   * deleted, so a directory without segments lost them, with any records after `after`.
   */
  existing?: boolean;
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
  if (fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory() === false) {
    throw new StorageError(`${dir} is not a directory: it is where the write-ahead log's segments belong${RECOVER}`);
  }
  if (fs.mkdirSync(dir, { recursive: true }) !== undefined) syncDir(dirname(dir));
  const after = opts.after ?? 0;
  const all = fs
    .readdirSync(dir)
    .flatMap((name) => {
      const m = SEGMENT.exec(name);
      return m ? [{ first: Number.parseInt(m[1]!, 16), path: join(dir, name) }] : [];
    })
    .sort((a, b) => a.first - b.first);
  if (all.length === 0 && opts.existing) {
    throw new StorageCorruptionError(dir, undefined, `the log holds no segment, but one always stays: its segments were removed, with any synced record after record ${after} (the last one the store holds)${RECOVER}`);
  }
  // Segments wholly before the store's next record are held already: a compaction may have removed
  // some of them in any order before a crash. They are neither read nor checked, and go once the
  // rest is found whole (a refused log is left as it is).
  let start = 0;
  while (start + 1 < all.length && all[start + 1]!.first <= after + 1) start++;
  const held = all.slice(0, start);
  const segments = all.slice(start);
  if (segments.length && segments[0]!.first > after + 1) {
    const seg = segments[0]!;
    throw new StorageCorruptionError(seg.path, undefined, `the log starts at record ${seg.first}, but the store holds records only through ${after}: records ${after + 1} to ${seg.first - 1} are missing (a segment before ${segmentName(seg.first)} was removed)${RECOVER}`);
  }
  const records: WalRecord[] = [];
  let expected: number | undefined;
  let activeSize = 0;
  let synced = after;
  segments.forEach((seg, i) => {
    if (expected !== undefined && seg.first !== expected) {
      const prev = segments[i - 1]!;
      throw new StorageCorruptionError(seg.path, undefined, `the log segment starts at record ${seg.first}, but the previous one ends at ${expected - 1} (${segmentName(prev.first)}): records ${expected} to ${seg.first - 1} are missing (a segment between them was removed)${RECOVER}`);
    }
    const bytes = readSegment(seg.path);
    const last = i === segments.length - 1;
    let offset = 0;
    let seq = seg.first;
    for (;;) {
      const r = decodeRecord(bytes, offset);
      if (r.kind === 'seal') {
        // Written only once the next segment's entry was durable: its successor must be there.
        if (r.nextSeq !== seq || r.next !== bytes.length) {
          throw new StorageCorruptionError(seg.path, undefined, `a seal for record ${r.nextSeq} at byte ${offset} where record ${seq} belongs${r.next === bytes.length ? '' : `, with ${bytes.length - r.next} bytes after it`}`);
        }
        if (last) {
          throw new StorageCorruptionError(join(dir, segmentName(seq)), undefined, `the log segment is missing: ${segmentName(seg.first)} was closed with records continuing at ${seq} in it: records from ${seq} on are missing, acknowledged ones maybe among them${RECOVER}`);
        }
        offset = r.next;
        break;
      }
      if (r.kind === 'end') {
        if (offset < bytes.length && !last) {
          throw new StorageCorruptionError(seg.path, undefined, `${r.reason} at byte ${offset} of a closed log segment`);
        }
        if (offset < bytes.length) refuseUnlessTorn(seg.path, bytes, offset, seq, after, r.reason);
        break;
      }
      if (r.record.seq !== seq) {
        if (!last) throw new StorageCorruptionError(seg.path, undefined, `record ${r.record.seq} at byte ${offset} where record ${seq} belongs`);
        refuseUnlessTorn(seg.path, bytes, offset, seq, after, `record ${r.record.seq} where record ${seq} belongs`);
        break; // bytes of an earlier life past the newest record: cut below
      }
      records.push({ seq, payload: Buffer.from(r.record.payload) });
      offset = r.next;
      seq++;
    }
    expected = seq;
    if (last) {
      activeSize = offset;
      // Cut a torn tail; else make what an earlier life wrote durable before this life's records
      // say so in their `synced` field (a kill leaves written records in the page cache, unsynced).
      if (offset < bytes.length) cutTail(seg.path, offset);
      else withFile(seg.path, 'r+', (fd) => fs.fdatasyncSync(fd));
      synced = seq - 1;
    }
  });
  if (expected !== undefined && expected - 1 < after) {
    // The store takes a record only once the log has synced it, and the newest segment is never
    // deleted: a log ending before the store's checkpoint lost synced records, maybe more after them.
    const path = segments.at(-1)!.path;
    throw new StorageCorruptionError(path, undefined, `the log ends at record ${expected - 1}, but the store holds records through ${after}, which the log had synced: records ${expected} to ${after} are missing, and any synced after them with them (a newest segment removed, or this one cut)${RECOVER}`);
  }
  for (const seg of held) fs.rmSync(seg.path, { force: true });
  if (held.length) syncDir(dir);
  const wal = new FileWal(dir, segments, expected ?? after + 1, activeSize, opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES, Math.max(synced, after));
  return { wal, records };
}

const RECOVER = ': restore the missing files, or remove the replica\'s whole data directory so it rejoins its group empty';
const RECOVER_DAMAGE = ': the file is left as it is; remove the replica\'s whole data directory so it rejoins its group empty';

/** A segment's bytes; an error names the file (Node's EISDIR, for one, names none). */
function readSegment(path: string): Buffer {
  try {
    return fs.readFileSync(path);
  } catch (e) {
    throw new StorageError(`cannot read the log segment ${path}: ${(e as Error).message}`);
  }
}

/** The unit a disk writes whole: a block a power loss left unwritten reads back as zeros. */
const SECTOR_BYTES = 512;
/** How far past the damage a later record's sequence number may be and still count as this log's. */
const SEQ_WINDOW = 1 << 24;

/**
 * Returns when the bad record at `at` of the newest segment (where record `seq` belongs) can be a
 * write torn by a crash, to be cut; throws when it is damage to a record that was synced. Torn can
 * only be what a crash caught before its sync returned:
 * - a record the store holds (`seq <= after`) was synced before the store took it;
 * - a later intact record whose `synced` reaches `seq` was written after this one was synced;
 * - a later intact record of this log that the store does not hold, written in the same unsynced
 *   batch, is cut with it: allowed only if the damage holds a whole sector of zeros (a block a power
 *   loss left unwritten while writeback put a later one on disk), as it may have been acknowledged.
 */
function refuseUnlessTorn(path: string, bytes: Uint8Array, at: number, seq: number, after: number, reason: string): void {
  const damage = (detail: string): StorageCorruptionError =>
    new StorageCorruptionError(path, undefined, `${reason} at byte ${at} (record ${seq}), but ${detail}: damage, not a torn write (cutting the log there would lose records that were synced)${RECOVER_DAMAGE}`);
  if (seq <= after) throw damage(`the store holds records through ${after}, so the log had synced it`);
  const { first, proof } = intactRecordsAfter(bytes, at + 1, seq);
  if (proof) throw damage(`record ${proof.seq} at byte ${proof.offset} after it is intact and was written once records through ${proof.synced} were synced`);
  if (!first || unwrittenSector(bytes, at, first.offset)) return;
  throw damage(`record ${first.seq} at byte ${first.offset} after it is intact`);
}

interface Found {
  offset: number;
  seq: number;
  synced: number | undefined;
}

/**
 * The intact records of this log at or after `from` (sequence numbers from `minSeq` to a little
 * more): the first one, and one whose `synced` reaches `minSeq`, if any.
 */
function intactRecordsAfter(bytes: Uint8Array, from: number, minSeq: number): { first?: Found; proof?: Found } {
  let first: Found | undefined;
  for (let o = from; o + LEGACY_HEADER_BYTES <= bytes.length; ) {
    const s = readU64(bytes, o + 8);
    const r = s < minSeq || s > minSeq + SEQ_WINDOW ? undefined : decodeRecord(bytes, o); // cheap: most offsets end here
    if (r?.kind !== 'record' || r.record.seq !== s) {
      o++;
      continue;
    }
    const found = { offset: o, seq: s, synced: r.synced };
    first ??= found;
    if (r.synced !== undefined && r.synced >= minSeq) return { first, proof: found };
    o = r.next;
  }
  return first ? { first } : {};
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
    /** Every record through this one is durable (written into each record, see wal-codec.ts). */
    private synced: number,
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
    encodeRecord(record, 0, seq, payload, this.synced);
    try {
      if (this.size > 0 && this.size + bytes + RECORD_HEADER_BYTES > this.segmentBytes) this.rotate(); // room for the seal
      this.writeAll(record, this.size);
    } catch (e) {
      const failed = withDiskSpace(e, this.dir, `writing the log in ${this.dir} failed`);
      this.failure ??= failed;
      throw failed;
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
        const failed = withDiskSpace(err, this.dir, `syncing the log in ${this.dir} failed`);
        this.failure ??= failed;
        w.reject(failed);
        this.next?.reject(failed);
        this.next = undefined;
        return;
      }
      this.synced = Math.max(this.synced, w.seq);
      w.resolve();
      if (this.next) {
        this.syncing = this.next;
        this.next = undefined;
        this.startSync();
      }
    });
  }

  /**
   * Closes the current segment durably before any record goes to the next one. The next segment's
   * entry is durable before the seal that names it: a sealed newest segment means one was removed.
   */
  private rotate(): void {
    const seg = this.createSegment(this.nextSeq);
    const seal = Buffer.allocUnsafe(RECORD_HEADER_BYTES);
    encodeSeal(seal, 0, this.nextSeq);
    this.writeAll(seal, this.size);
    fs.fdatasyncSync(this.fd);
    this.synced = this.nextSeq - 1;
    const old = this.fd;
    // Closed here, its number may be reused by any file the process opens next: if the next segment
    // cannot be made, close() must not close that number again.
    this.fd = -1;
    if (this.syncing) this.retired.push(old);
    else fs.closeSync(old);
    this.segments.push(seg);
    this.fd = fs.openSync(seg.path, 'r+');
    this.size = 0;
  }

  /**
   * A short write is continued: on a full disk the next write fails with the errno (ENOSPC) that
   * says why. What did reach the file is an unsynced torn tail, cut at the next open.
   */
  private writeAll(bytes: Buffer, at: number): void {
    for (let done = 0; done < bytes.length; ) {
      const n = fs.writeSync(this.fd, bytes, done, bytes.length - done, at + done);
      if (n === 0) throw new StorageError(`a short write to the log in ${this.dir}`);
      done += n;
    }
  }

  private createSegment(first: number): Segment {
    const path = join(this.dir, segmentName(first));
    fs.closeSync(fs.openSync(path, 'w'));
    syncDir(this.dir);
    return { first, path };
  }
}
