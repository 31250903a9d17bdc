// RESP, the Redis protocol, as a pure codec: an incremental decoder of client commands (RESP2
// multibulk arrays, and inline commands for telnet users and redis-benchmark's PING_INLINE) and an
// encoder of replies in RESP2 or RESP3. No I/O here; resp-door.ts moves the bytes.
//
// The decoder bounds everything a client controls before buffering it: the array length, each bulk
// length (checked when its `$` header arrives, not after its bytes), the whole command's size, and
// header and inline line lengths. Requests are flat (arrays of bulk strings), so nesting is refused
// at the first level, as Redis does. A protocol error is final: the connection must be closed.

export class RespProtocolError extends Error {
  override readonly name = 'RespProtocolError';
}

export interface RespDecoderLimits {
  /** Largest bulk string (one argument). */
  maxBulkBytes: number;
  /** Most arguments in one command. */
  maxArgs: number;
  /** Largest command: the sum of its bulk lengths. */
  maxCommandBytes: number;
  /** Longest inline command or header line. */
  maxInlineBytes: number;
}

/** Redis's own inline limit; our bulk limits leave room above the 1 MiB value limit (see docs/doors.md). */
export const DEFAULT_RESP_LIMITS: RespDecoderLimits = {
  maxBulkBytes: 2 * 1024 * 1024,
  maxArgs: 128 * 1024,
  maxCommandBytes: 4 * 1024 * 1024 + 64 * 1024,
  maxInlineBytes: 64 * 1024,
};

const CR = 13;
const LF = 10;
/** "*" or "$", a sign, up to 10 digits, CRLF: a longer header cannot hold a valid length. */
const MAX_HEADER = 16;

/**
 * Usage: decoder.push(chunk); for (let c; (c = decoder.next()) !== null; ) handle(c).
 * Every argument is a fresh copy, so commands outlive the chunks they came in.
 */
export class RespDecoder {
  readonly limits: RespDecoderLimits;
  private buf: Buffer = Buffer.alloc(0);
  /** Whether `buf` is ours to write into (not a chunk adopted without copying). */
  private owned = false;
  private pos = 0;
  private end = 0;
  /** The multibulk command being read: its arguments so far and how many are still due. */
  private args: Buffer[] | null = null;
  private due = 0;
  private bulkLen = -1;
  private commandBytes = 0;
  private broken: RespProtocolError | null = null;

  constructor(limits: Partial<RespDecoderLimits> = {}) {
    this.limits = { ...DEFAULT_RESP_LIMITS, ...limits };
  }

  /** Bytes received and not yet consumed. */
  get bufferedBytes(): number {
    return this.end - this.pos;
  }

  push(chunk: Uint8Array): void {
    if (this.broken || chunk.length === 0) return;
    const pending = this.end - this.pos;
    if (pending === 0) {
      // The common case: nothing half-read, so read straight from the chunk.
      this.buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      this.owned = false;
      this.pos = 0;
      this.end = chunk.length;
      return;
    }
    const need = pending + chunk.length;
    if (this.owned && this.buf.length - this.end >= chunk.length) {
      this.buf.set(chunk, this.end);
    } else if (this.owned && this.buf.length >= need) {
      this.buf.copy(this.buf, 0, this.pos, this.end);
      this.buf.set(chunk, pending);
      this.pos = 0;
      this.end = pending;
    } else {
      const next = Buffer.allocUnsafe(Math.max(need, Math.min(2 * need, need + (1 << 20)), 4096));
      this.buf.copy(next, 0, this.pos, this.end);
      next.set(chunk, pending);
      this.buf = next;
      this.owned = true;
      this.pos = 0;
      this.end = pending;
    }
    this.end += chunk.length;
  }

  /** The next complete command (name first), or null until more bytes arrive. */
  next(): Buffer[] | null {
    if (this.broken) throw this.broken;
    try {
      return this.read();
    } catch (e) {
      if (e instanceof RespProtocolError) {
        this.broken = e;
        this.buf = Buffer.alloc(0);
        this.pos = this.end = 0;
        this.args = null;
      }
      throw e;
    }
  }

  private read(): Buffer[] | null {
    for (;;) {
      if (this.args === null) {
        if (this.pos === this.end) return null;
        if (this.buf[this.pos] !== 0x2a /* '*' */) {
          const inline = this.readInline();
          if (inline === null) return null;
          if (inline.length === 0) continue; // an empty line is ignored, as Redis does
          return inline;
        }
        const eol = this.findCRLF(this.pos, MAX_HEADER, 'invalid multibulk length');
        if (eol < 0) return null;
        const n = parseLength(this.buf, this.pos + 1, eol);
        if (n === null || n > this.limits.maxArgs) throw new RespProtocolError('invalid multibulk length');
        this.pos = eol + 2;
        if (n <= 0) continue; // "*0" and "*-1" are empty commands: nothing to answer
        this.args = [];
        this.due = n;
        this.bulkLen = -1;
        this.commandBytes = 0;
      }
      while (this.due > 0) {
        if (this.bulkLen < 0) {
          if (this.pos === this.end) return null;
          const c = this.buf[this.pos]!;
          if (c !== 0x24 /* '$' */) throw new RespProtocolError(`expected '$', got '${printable(c)}'`);
          const eol = this.findCRLF(this.pos, MAX_HEADER, 'invalid bulk length');
          if (eol < 0) return null;
          const len = parseLength(this.buf, this.pos + 1, eol);
          if (len === null || len < 0 || len > this.limits.maxBulkBytes) throw new RespProtocolError('invalid bulk length');
          this.commandBytes += len;
          if (this.commandBytes > this.limits.maxCommandBytes) {
            throw new RespProtocolError(`command larger than ${this.limits.maxCommandBytes} bytes`);
          }
          this.bulkLen = len;
          this.pos = eol + 2;
        }
        if (this.end - this.pos < this.bulkLen + 2) return null;
        const stop = this.pos + this.bulkLen;
        if (this.buf[stop] !== CR || this.buf[stop + 1] !== LF) throw new RespProtocolError('expected CRLF after a bulk string');
        this.args!.push(Buffer.from(this.buf.subarray(this.pos, stop)));
        this.pos = stop + 2;
        this.bulkLen = -1;
        this.due--;
      }
      const out = this.args!;
      this.args = null;
      return out;
    }
  }

  /** Index of the CR of the next CRLF from `from`, or -1 if not there yet; throws past `max`. */
  private findCRLF(from: number, max: number, tooLong: string): number {
    const i = this.indexOfLF(from, Math.min(this.end, from + max + 1));
    if (i >= 0) {
      if (i === from || this.buf[i - 1] !== CR) throw new RespProtocolError('expected CRLF at the end of a header');
      return i - 1;
    }
    if (this.end - from > max) throw new RespProtocolError(tooLong);
    return -1;
  }

  /** First LF in [from, to), or -1; never looks past `end` (an owned buffer has spare room). */
  private indexOfLF(from: number, to: number): number {
    const i = this.buf.subarray(from, to).indexOf(LF);
    return i < 0 ? -1 : from + i;
  }

  private readInline(): Buffer[] | null {
    const lf = this.indexOfLF(this.pos, Math.min(this.end, this.pos + this.limits.maxInlineBytes + 1));
    if (lf < 0) {
      if (this.end - this.pos > this.limits.maxInlineBytes) throw new RespProtocolError('too big inline request');
      return null;
    }
    const stop = lf > this.pos && this.buf[lf - 1] === CR ? lf - 1 : lf;
    const line = this.buf.subarray(this.pos, stop);
    this.pos = lf + 1;
    return splitInline(line);
  }
}

/** A strict decimal: optional '-', 1–10 digits, nothing else (as Redis's string2ll, bounded). */
function parseLength(b: Buffer, from: number, to: number): number | null {
  let i = from;
  const neg = b[i] === 0x2d;
  if (neg) i++;
  if (i === to || to - i > 10) return null;
  let n = 0;
  for (; i < to; i++) {
    const d = b[i]! - 0x30;
    if (d < 0 || d > 9) return null;
    n = n * 10 + d;
  }
  return neg ? -n : n;
}

function printable(c: number): string {
  return c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`;
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x0b || c === 0x0c;
}

function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

const ESCAPES: Record<number, number> = { 0x6e: 0x0a, 0x72: 0x0d, 0x74: 0x09, 0x62: 0x08, 0x61: 0x07 };

/**
 * Splits an inline command like Redis's sdssplitargs: words separated by spaces; "double quotes"
 * with \n \r \t \b \a \\ \" \xHH escapes; 'single quotes' with \' only. A closing quote must be
 * followed by a space or the end.
 */
export function splitInline(line: Uint8Array): Buffer[] {
  const out: Buffer[] = [];
  let i = 0;
  const n = line.length;
  for (;;) {
    while (i < n && isSpace(line[i]!)) i++;
    if (i >= n) return out;
    const word: number[] = [];
    const quote = line[i] === 0x22 ? 0x22 : line[i] === 0x27 ? 0x27 : 0;
    if (quote) i++;
    for (;;) {
      if (i >= n) {
        if (quote) throw new RespProtocolError('unbalanced quotes in request');
        break;
      }
      const c = line[i]!;
      if (!quote) {
        if (isSpace(c)) break;
        word.push(c);
        i++;
      } else if (c === 0x5c /* \ */ && i + 1 < n) {
        const e = line[i + 1]!;
        if (quote === 0x22 && e === 0x78 /* x */ && i + 3 < n && hexVal(line[i + 2]!) >= 0 && hexVal(line[i + 3]!) >= 0) {
          word.push(hexVal(line[i + 2]!) * 16 + hexVal(line[i + 3]!));
          i += 4;
        } else if (quote === 0x22) {
          word.push(ESCAPES[e] ?? e);
          i += 2;
        } else if (e === 0x27) {
          word.push(0x27);
          i += 2;
        } else {
          word.push(c);
          i++;
        }
      } else if (c === quote) {
        i++;
        if (i < n && !isSpace(line[i]!)) throw new RespProtocolError('unbalanced quotes in request');
        break;
      } else {
        word.push(c);
        i++;
      }
    }
    out.push(Buffer.from(word));
  }
}

// ---- Replies ----------------------------------------------------------------------------------

/**
 * A reply value. `null` encodes as RESP2's null bulk ($-1) or RESP3's null (_); `map` as a flat
 * array in RESP2; `verbatim` as a bulk string in RESP2. The reply decoder yields the same shapes
 * (plus RESP3's other types), so tests compare what they sent with what they read.
 */
export type RespValue =
  | { type: 'simple'; value: string }
  | { type: 'error'; value: string }
  | { type: 'int'; value: number | bigint }
  | { type: 'bulk'; value: Uint8Array }
  | { type: 'null' }
  | { type: 'array'; value: RespValue[] }
  | { type: 'map'; value: [RespValue, RespValue][] }
  | { type: 'set'; value: RespValue[] }
  | { type: 'bool'; value: boolean }
  | { type: 'double'; value: number }
  | { type: 'bignum'; value: bigint }
  | { type: 'verbatim'; format: string; value: Uint8Array }
  | { type: 'push'; value: RespValue[] };

export type RespVersion = 2 | 3;

export const resp = {
  ok: { type: 'simple', value: 'OK' } as RespValue,
  null: { type: 'null' } as RespValue,
  simple: (value: string): RespValue => ({ type: 'simple', value }),
  /** `message` starts with its code word, e.g. "ERR syntax error" or "TRYAGAIN ...". */
  error: (message: string): RespValue => ({ type: 'error', value: message }),
  int: (value: number | bigint): RespValue => ({ type: 'int', value }),
  bulk: (value: Uint8Array | string | null): RespValue =>
    value === null ? { type: 'null' } : { type: 'bulk', value: typeof value === 'string' ? Buffer.from(value) : value },
  array: (value: RespValue[]): RespValue => ({ type: 'array', value }),
  map: (value: [RespValue, RespValue][]): RespValue => ({ type: 'map', value }),
  verbatim: (text: string): RespValue => ({ type: 'verbatim', format: 'txt', value: Buffer.from(text) }),
};

const CRLF = Buffer.from('\r\n');
const OK_BYTES = Buffer.from('+OK\r\n');

/** A reply's bytes. Error and simple strings have CR/LF replaced (they are single lines). */
export function encodeReply(v: RespValue, version: RespVersion = 2): Buffer {
  if (v === resp.ok) return OK_BYTES;
  if (v.type === 'bulk') return encodeBulk(v.value); // GET's answer: one buffer, no concat
  const parts: Uint8Array[] = [];
  encodeInto(v, version, parts);
  return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
}

/** `$len\r\n value \r\n` in one allocation (small ones come from Node's buffer pool). */
function encodeBulk(value: Uint8Array): Buffer {
  const head = `$${value.length}\r\n`;
  const out = Buffer.allocUnsafe(head.length + value.length + 2);
  out.write(head, 0, 'latin1');
  out.set(value, head.length);
  out[out.length - 2] = 0x0d;
  out[out.length - 1] = 0x0a;
  return out;
}

function line(prefix: string, text: string | number | bigint): Buffer {
  return Buffer.from(`${prefix}${text}\r\n`);
}

function oneLine(s: string): string {
  return s.replace(/[\r\n]/g, ' ');
}

function encodeInto(v: RespValue, version: RespVersion, out: Uint8Array[]): void {
  switch (v.type) {
    case 'simple':
      out.push(line('+', oneLine(v.value)));
      return;
    case 'error':
      out.push(line('-', oneLine(v.value)));
      return;
    case 'int':
      out.push(line(':', v.value));
      return;
    case 'bulk':
      out.push(line('$', v.value.length), v.value, CRLF);
      return;
    case 'null':
      out.push(Buffer.from(version === 3 ? '_\r\n' : '$-1\r\n'));
      return;
    case 'array':
    case 'set':
    case 'push': {
      const prefix = version === 3 ? { array: '*', set: '~', push: '>' }[v.type] : '*';
      out.push(line(prefix, v.value.length));
      for (const item of v.value) encodeInto(item, version, out);
      return;
    }
    case 'map':
      out.push(version === 3 ? line('%', v.value.length) : line('*', v.value.length * 2));
      for (const [k, val] of v.value) {
        encodeInto(k, version, out);
        encodeInto(val, version, out);
      }
      return;
    case 'bool':
      out.push(version === 3 ? Buffer.from(v.value ? '#t\r\n' : '#f\r\n') : line(':', v.value ? 1 : 0));
      return;
    case 'double': {
      const text = Number.isNaN(v.value) ? 'nan' : v.value === Infinity ? 'inf' : v.value === -Infinity ? '-inf' : String(v.value);
      out.push(version === 3 ? line(',', text) : bulkOf(text));
      return;
    }
    case 'bignum':
      out.push(version === 3 ? line('(', v.value) : bulkOf(String(v.value)));
      return;
    case 'verbatim':
      if (version === 3) out.push(line('=', v.value.length + 4), Buffer.from(`${v.format.slice(0, 3).padEnd(3)}:`), v.value, CRLF);
      else out.push(line('$', v.value.length), v.value, CRLF);
      return;
  }
}

function bulkOf(text: string): Buffer {
  const b = Buffer.from(text);
  return Buffer.concat([line('$', b.length), b, CRLF]);
}
