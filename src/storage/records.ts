// Bodies of the small fixed records in the `raft` database (sealed by the caller, see sealed.ts).
import type { ConfState, HardState, SnapshotMeta } from '../raft/types.ts';
import { readU32, readU64, writeU32, writeU64 } from './bytes.ts';

/** Keys of the records in the `raft` database. */
export const RaftKey = {
  format: Buffer.from('format'),
  hardState: Buffer.from('hard-state'),
  base: Buffer.from('base'),
  applied: Buffer.from('applied'),
  generation: Buffer.from('generation'),
  stage: Buffer.from('stage'),
  /** The last write-ahead log record whose Ready this store holds (wal.ts; absent: none). */
  walSeq: Buffer.from('wal-seq'),
  /**
   * Present while a store created empty with a configuration (not a joiner's) has not caught up
   * with its group (RaftConfig.blankStart): a restart must know it, not guess it from the directory.
   */
  blank: Buffer.from('blank'),
} as const;

/** Bumped when a record layout changes; a store written by another version is refused. */
export const FORMAT_VERSION = 2;

/** Thrown by decoders on a body of the wrong shape; the caller adds file and record. */
export class BadRecord extends Error {}

class Reader {
  private off = 0;
  constructor(private readonly buf: Uint8Array) {}
  u8(): number {
    this.need(1);
    return this.buf[this.off++]!;
  }
  u32(): number {
    this.need(4);
    const v = readU32(this.buf, this.off);
    this.off += 4;
    return v;
  }
  u64(): number {
    this.need(8);
    const v = readU64(this.buf, this.off);
    this.off += 8;
    return v;
  }
  bytes(n: number): Uint8Array {
    this.need(n);
    const v = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return v;
  }
  rest(): Uint8Array {
    return this.bytes(this.buf.length - this.off);
  }
  end(): void {
    if (this.off !== this.buf.length) throw new BadRecord(`${this.buf.length - this.off} trailing bytes`);
  }
  private need(n: number): void {
    if (this.off + n > this.buf.length) throw new BadRecord('record too short');
  }
}

class Writer {
  private buf = Buffer.allocUnsafe(64);
  private off = 0;
  u8(v: number): this {
    this.room(1);
    this.buf[this.off++] = v;
    return this;
  }
  u32(v: number): this {
    this.room(4);
    writeU32(this.buf, this.off, v);
    this.off += 4;
    return this;
  }
  u64(v: number): this {
    this.room(8);
    writeU64(this.buf, this.off, v);
    this.off += 8;
    return this;
  }
  bytes(v: Uint8Array): this {
    this.room(v.length);
    this.buf.set(v, this.off);
    this.off += v.length;
    return this;
  }
  done(): Buffer {
    return this.buf.subarray(0, this.off);
  }
  private room(n: number): void {
    if (this.off + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.off + n));
    next.set(this.buf.subarray(0, this.off));
    this.buf = next;
  }
}

export { Reader, Writer };

export function encodeFormat(id: Uint8Array): Buffer {
  return new Writer().u32(FORMAT_VERSION).bytes(id).done();
}
export function decodeFormat(body: Uint8Array): { version: number; id: Uint8Array } {
  const r = new Reader(body);
  const version = r.u32();
  return { version, id: r.rest() };
}

export function encodeHardState(hs: HardState): Buffer {
  return new Writer().u64(hs.term).u64(hs.vote).u64(hs.commit).done();
}
export function decodeHardState(body: Uint8Array): HardState {
  const r = new Reader(body);
  const hs = { term: r.u64(), vote: r.u64(), commit: r.u64() };
  r.end();
  return hs;
}

function writeMeta(w: Writer, m: SnapshotMeta): Writer {
  w.u64(m.index).u64(m.term).u32(m.conf.voters.length);
  for (const v of m.conf.voters) w.u64(v);
  w.u32(m.conf.learners.length);
  for (const l of m.conf.learners) w.u64(l);
  return w;
}
function readMeta(r: Reader): SnapshotMeta {
  const index = r.u64();
  const term = r.u64();
  const ids = (): number[] => Array.from({ length: r.u32() }, () => r.u64());
  const voters = ids();
  const learners = ids();
  const conf: ConfState = { voters, learners };
  return { index, term, conf };
}

export function encodeSnapshotMeta(m: SnapshotMeta): Buffer {
  return writeMeta(new Writer(), m).done();
}
export function decodeSnapshotMeta(body: Uint8Array): SnapshotMeta {
  const r = new Reader(body);
  const m = readMeta(r);
  r.end();
  return m;
}

export function encodeIndex(index: number): Buffer {
  return new Writer().u64(index).done();
}
export function decodeIndex(body: Uint8Array): number {
  const r = new Reader(body);
  const v = r.u64();
  r.end();
  return v;
}

export function encodeGeneration(g: 0 | 1): Buffer {
  return new Writer().u8(g).done();
}
export function decodeGeneration(body: Uint8Array): 0 | 1 {
  const r = new Reader(body);
  const g = r.u8();
  r.end();
  if (g !== 0 && g !== 1) throw new BadRecord(`generation ${g}`);
  return g;
}

/** Progress of the snapshot being received into the inactive generation. */
export interface StageState {
  meta: SnapshotMeta;
  /** The seq of the next chunk expected. */
  nextSeq: number;
  /** The last chunk has been staged: the image is complete and may be installed. */
  complete: boolean;
}
export function encodeStage(s: StageState): Buffer {
  return writeMeta(new Writer(), s.meta).u32(s.nextSeq).u8(s.complete ? 1 : 0).done();
}
export function decodeStage(body: Uint8Array): StageState {
  const r = new Reader(body);
  const meta = readMeta(r);
  const nextSeq = r.u32();
  const complete = r.u8() === 1;
  r.end();
  return { meta, nextSeq, complete };
}
