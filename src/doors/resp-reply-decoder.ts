// Decodes RESP2/RESP3 replies (any type, nested) for clients of the RESP door: the test suite and
// tools. Bounded like the request decoder: nesting depth, aggregate lengths and bulk lengths are
// checked from their headers. A value that is not complete yet is parsed again from its start when
// more bytes arrive; replies are small next to requests, and this keeps the parser a plain
// recursive function.
import { RespProtocolError, type RespValue } from './resp-codec.ts';

export interface RespReplyLimits {
  maxDepth: number;
  maxBulkBytes: number;
  maxAggregateLength: number;
}

const DEFAULTS: RespReplyLimits = { maxDepth: 32, maxBulkBytes: 64 * 1024 * 1024, maxAggregateLength: 16 * 1024 * 1024 };
const MAX_LINE = 64 * 1024;

/** Thrown by the inner parser when the buffer ends inside a value. */
const NEED_MORE = Symbol('need more');

export class RespReplyDecoder {
  private readonly limits: RespReplyLimits;
  private buf = Buffer.alloc(0);
  private broken: RespProtocolError | null = null;

  constructor(limits: Partial<RespReplyLimits> = {}) {
    this.limits = { ...DEFAULTS, ...limits };
  }

  push(chunk: Uint8Array): void {
    if (this.broken) return;
    this.buf = this.buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.buf, chunk]);
  }

  /** The next complete reply, or undefined until more bytes arrive. Throws RespProtocolError. */
  next(): RespValue | undefined {
    if (this.broken) throw this.broken;
    if (this.buf.length === 0) return undefined;
    try {
      const { value, pos } = this.parse(0, 0);
      this.buf = this.buf.subarray(pos);
      return value;
    } catch (e) {
      if (e === NEED_MORE) return undefined;
      if (e instanceof RespProtocolError) {
        this.broken = e;
        this.buf = Buffer.alloc(0);
      }
      throw e;
    }
  }

  private line(pos: number): { text: string; next: number } {
    const window = this.buf.subarray(pos, pos + MAX_LINE + 2);
    const lf = window.indexOf(10);
    if (lf < 0) {
      if (window.length > MAX_LINE + 1) throw new RespProtocolError('reply line too long');
      throw NEED_MORE;
    }
    if (lf === 0 || window[lf - 1] !== 13) throw new RespProtocolError('expected CRLF');
    return { text: window.subarray(0, lf - 1).toString('latin1'), next: pos + lf + 1 };
  }

  private length(text: string, max: number, what: string): number {
    if (!/^-?\d{1,12}$/.test(text)) throw new RespProtocolError(`invalid ${what} length "${text.slice(0, 20)}"`);
    const n = Number(text);
    if (n < -1 || n > max) throw new RespProtocolError(`${what} length ${n} out of bounds`);
    return n;
  }

  private bytes(pos: number, n: number): { bytes: Buffer; next: number } {
    if (this.buf.length < pos + n + 2) throw NEED_MORE;
    if (this.buf[pos + n] !== 13 || this.buf[pos + n + 1] !== 10) throw new RespProtocolError('expected CRLF after a bulk string');
    return { bytes: Buffer.from(this.buf.subarray(pos, pos + n)), next: pos + n + 2 };
  }

  private parse(pos: number, depth: number): { value: RespValue; pos: number } {
    if (pos >= this.buf.length) throw NEED_MORE;
    const t = String.fromCharCode(this.buf[pos]!);
    const { text, next } = this.line(pos + 1);
    switch (t) {
      case '+':
        return { value: { type: 'simple', value: text }, pos: next };
      case '-':
        return { value: { type: 'error', value: text }, pos: next };
      case ':': {
        if (!/^[-+]?\d{1,20}$/.test(text)) throw new RespProtocolError(`invalid integer "${text.slice(0, 24)}"`);
        const big = BigInt(text);
        const value = big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
        return { value: { type: 'int', value }, pos: next };
      }
      case '_':
        if (text !== '') throw new RespProtocolError('invalid null');
        return { value: { type: 'null' }, pos: next };
      case '#':
        if (text !== 't' && text !== 'f') throw new RespProtocolError('invalid boolean');
        return { value: { type: 'bool', value: text === 't' }, pos: next };
      case ',': {
        const v = text === 'inf' ? Infinity : text === '-inf' ? -Infinity : text === 'nan' ? NaN : Number(text);
        if (Number.isNaN(v) && text !== 'nan') throw new RespProtocolError('invalid double');
        return { value: { type: 'double', value: v }, pos: next };
      }
      case '(':
        if (!/^-?\d{1,4096}$/.test(text)) throw new RespProtocolError('invalid big number');
        return { value: { type: 'bignum', value: BigInt(text) }, pos: next };
      case '$':
      case '!':
      case '=': {
        const n = this.length(text, this.limits.maxBulkBytes, 'bulk');
        if (n < 0) {
          if (t !== '$') throw new RespProtocolError('negative length');
          return { value: { type: 'null' }, pos: next };
        }
        const { bytes, next: after } = this.bytes(next, n);
        if (t === '!') return { value: { type: 'error', value: bytes.toString() }, pos: after };
        if (t === '=') {
          if (n < 4 || bytes[3] !== 0x3a) throw new RespProtocolError('invalid verbatim string');
          return { value: { type: 'verbatim', format: bytes.subarray(0, 3).toString('latin1'), value: bytes.subarray(4) }, pos: after };
        }
        return { value: { type: 'bulk', value: bytes }, pos: after };
      }
      case '*':
      case '~':
      case '>':
      case '%':
      case '|': {
        const n = this.length(text, this.limits.maxAggregateLength, 'aggregate');
        if (n < 0) {
          if (t !== '*') throw new RespProtocolError('negative length');
          return { value: { type: 'null' }, pos: next };
        }
        if (depth + 1 > this.limits.maxDepth) throw new RespProtocolError(`nesting deeper than ${this.limits.maxDepth}`);
        const count = t === '%' || t === '|' ? 2 * n : n;
        // Each element needs at least 3 bytes: a count the buffer cannot hold yet is not allocated.
        if (this.buf.length - next < 3 * count) throw NEED_MORE;
        const items: RespValue[] = [];
        let p = next;
        for (let i = 0; i < count; i++) {
          const r = this.parse(p, depth + 1);
          items.push(r.value);
          p = r.pos;
        }
        if (t === '|') return this.parse(p, depth + 1); // attributes annotate the value that follows
        if (t === '%') {
          const pairs: [RespValue, RespValue][] = [];
          for (let i = 0; i < items.length; i += 2) pairs.push([items[i]!, items[i + 1]!]);
          return { value: { type: 'map', value: pairs }, pos: p };
        }
        const type = t === '*' ? 'array' : t === '~' ? 'set' : 'push';
        return { value: { type, value: items }, pos: p };
      }
      default:
        throw new RespProtocolError(`unknown reply type '${t.charCodeAt(0) < 0x20 || t.charCodeAt(0) > 0x7e ? `\\x${t.charCodeAt(0).toString(16)}` : t}'`);
    }
  }
}
