// Big-endian primitives shared by every codec: a Writer that fills one preallocated buffer and a
// strict Reader whose every failure is a BadRequestError (never a RangeError), and whose byte
// fields are views into the input — decoding never allocates more than the input it was given.

import { BadRequestError } from './errors.ts';

const TWO_32 = 0x1_0000_0000;
/** Highest u32 "hi" half that still gives a safe integer (2^53 - 1 >> 32). */
const MAX_SAFE_HI = 0x1f_ffff;

export const U16_MAX = 0xffff;
export const U32_MAX = 0xffff_ffff;

/** One-entry caches of the last u64 bigint converted each way (clientIds repeat). */
const enc = { big: 0n, hi: 0, lo: 0 };
const dec = { big: 0n, hi: 0, lo: 0 };

export class Writer {
  pos: number;
  constructor(
    readonly buf: Buffer,
    pos = 0,
  ) {
    this.pos = pos;
  }

  u8(v: number): void {
    this.buf[this.pos++] = v;
  }

  bool(v: boolean): void {
    this.buf[this.pos++] = v ? 1 : 0;
  }

  u16(v: number): void {
    const b = this.buf;
    let p = this.pos;
    b[p++] = v >>> 8;
    b[p++] = v;
    this.pos = p;
  }

  u32(v: number): void {
    const b = this.buf;
    let p = this.pos;
    b[p++] = v >>> 24;
    b[p++] = v >>> 16;
    b[p++] = v >>> 8;
    b[p++] = v;
    this.pos = p;
  }

  /** Signed 32-bit, two's complement (used where -1 means "none"). */
  i32(v: number): void {
    this.u32(v >>> 0);
  }

  /** A non-negative safe integer as u64. Terms, indexes and counters are JS numbers. */
  u64(v: number): void {
    if (!(Number.isSafeInteger(v) && v >= 0)) throw new RangeError(`u64 field out of range: ${v}`);
    this.u32(Math.floor(v / TWO_32));
    this.u32(v >>> 0);
  }

  /** Like u64, but -1 ("none") is allowed and written as all ones. */
  u64OrNone(v: number): void {
    if (v === -1) {
      this.u32(U32_MAX);
      this.u32(U32_MAX);
    } else {
      this.u64(v);
    }
  }

  big64(v: bigint): void {
    // A connection writes the same clientId over and over; BigInt shifts cost ~70 ns, a compare ~2.
    if (v !== enc.big) {
      if (v < 0n || v > 0xffff_ffff_ffff_ffffn) throw new RangeError(`u64 field out of range: ${v}`);
      enc.big = v;
      enc.hi = Number(v >> 32n);
      enc.lo = Number(v & 0xffff_ffffn);
    }
    this.u32(enc.hi);
    this.u32(enc.lo);
  }

  raw(src: Uint8Array): void {
    this.buf.set(src, this.pos);
    this.pos += src.length;
  }

  /** u16 length + bytes (keys). */
  bytes16(src: Uint8Array): void {
    if (src.length > U16_MAX) throw new RangeError(`field of ${src.length} bytes exceeds u16 length`);
    this.u16(src.length);
    this.raw(src);
  }

  /** u32 length + bytes (values, entry data). */
  bytes32(src: Uint8Array): void {
    this.u32(src.length);
    this.raw(src);
  }

  /** u16 length + UTF-8 (short texts: messages, addresses). The length was sized by utf8Size. */
  str16(s: string, size: number): void {
    this.u16(size);
    this.pos += this.buf.write(s, this.pos, size, 'utf8');
  }
}

/** Byte length of a u16-prefixed UTF-8 field; over-long texts are rejected at encode time. */
export function utf8Size(s: string): number {
  const n = Buffer.byteLength(s, 'utf8');
  if (n > U16_MAX) throw new RangeError(`text of ${n} bytes exceeds u16 length`);
  return n;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export class Reader {
  pos: number;
  readonly end: number;
  constructor(
    readonly buf: Uint8Array,
    /** What is being decoded, for error messages. */
    readonly what: string,
  ) {
    this.pos = 0;
    this.end = buf.length;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  fail(msg: string): never {
    throw new BadRequestError(`${this.what}: ${msg} at byte ${this.pos}`);
  }

  private need(n: number): void {
    if (this.end - this.pos < n) this.fail(`truncated (need ${n} bytes, have ${this.end - this.pos})`);
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  /** Strictly 0 or 1: any other byte is a malformed frame, not "true". */
  bool(): boolean {
    const v = this.u8();
    if (v > 1) {
      this.pos--;
      this.fail(`flag byte ${v} is neither 0 nor 1`);
    }
    return v === 1;
  }

  u16(): number {
    this.need(2);
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 2;
    return (b[p]! << 8) | b[p + 1]!;
  }

  u32(): number {
    this.need(4);
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 4;
    return b[p]! * 0x100_0000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
  }

  i32(): number {
    return this.u32() | 0;
  }

  u64(): number {
    const hi = this.u32();
    const lo = this.u32();
    if (hi > MAX_SAFE_HI) {
      this.pos -= 8;
      this.fail('u64 value beyond 2^53');
    }
    return hi * TWO_32 + lo;
  }

  u64OrNone(): number {
    const hi = this.u32();
    const lo = this.u32();
    if (hi === U32_MAX && lo === U32_MAX) return -1;
    if (hi > MAX_SAFE_HI) {
      this.pos -= 8;
      this.fail('u64 value beyond 2^53');
    }
    return hi * TWO_32 + lo;
  }

  big64(): bigint {
    const hi = this.u32();
    const lo = this.u32();
    if (hi !== dec.hi || lo !== dec.lo) {
      dec.big = (BigInt(hi) << 32n) | BigInt(lo);
      dec.hi = hi;
      dec.lo = lo;
    }
    return dec.big;
  }

  /** A view of the next n bytes (no copy). */
  raw(n: number): Uint8Array {
    this.need(n);
    const p = this.pos;
    this.pos = p + n;
    return this.buf.subarray(p, p + n);
  }

  bytes16(): Uint8Array {
    return this.raw(this.u16());
  }

  bytes32(): Uint8Array {
    return this.raw(this.u32());
  }

  str16(): string {
    const bytes = this.bytes16();
    try {
      return utf8.decode(bytes);
    } catch {
      this.pos -= bytes.length;
      return this.fail('invalid UTF-8');
    }
  }

  /** Strict decoding: a body with bytes left over is malformed. */
  done(): void {
    if (this.pos !== this.end) this.fail(`${this.end - this.pos} trailing bytes`);
  }
}
