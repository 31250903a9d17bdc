// The two native requests a benchmark sends, encoded in place (layouts in docs/protocol.md §2, §4;
// test/bench/codecs.test.ts checks them byte for byte against src/wire's encodeRequest), and
// a response scanner that reads frame headers without building objects per frame.

const TYPE_GET = 0x03;
const TYPE_PUT = 0x04;
const HEADER = 9;

/** Bytes a PUT frame takes. */
export function putFrameBytes(keyLen: number, valueLen: number): number {
  return HEADER + 16 + 2 + keyLen + 4 + valueLen;
}

export function getFrameBytes(keyLen: number): number {
  return HEADER + 1 + 2 + keyLen;
}

/** Writes a PUT frame at out[p]; returns the end. clientId comes as two u32 halves (no bigint). */
export function writePut(
  out: Buffer,
  p: number,
  requestId: number,
  clientHi: number,
  clientLo: number,
  seq: number,
  keys: Buffer,
  keyOff: number,
  keyLen: number,
  values: Buffer,
  valOff: number,
  valLen: number,
): number {
  out.writeUInt32BE(5 + 16 + 2 + keyLen + 4 + valLen, p);
  out[p + 4] = TYPE_PUT;
  out.writeUInt32BE(requestId, p + 5);
  out.writeUInt32BE(clientHi, p + 9);
  out.writeUInt32BE(clientLo, p + 13);
  out.writeUInt32BE(Math.floor(seq / 0x1_0000_0000), p + 17);
  out.writeUInt32BE(seq >>> 0, p + 21);
  out.writeUInt16BE(keyLen, p + 25);
  keys.copy(out, p + 27, keyOff, keyOff + keyLen);
  const v = p + 27 + keyLen;
  out.writeUInt32BE(valLen, v);
  values.copy(out, v + 4, valOff, valOff + valLen);
  return v + 4 + valLen;
}

export function writeGet(out: Buffer, p: number, requestId: number, stale: boolean, keys: Buffer, keyOff: number, keyLen: number): number {
  out.writeUInt32BE(5 + 1 + 2 + keyLen, p);
  out[p + 4] = TYPE_GET;
  out.writeUInt32BE(requestId, p + 5);
  out[p + 9] = stale ? 1 : 0;
  out.writeUInt16BE(keyLen, p + 10);
  keys.copy(out, p + 12, keyOff, keyOff + keyLen);
  return p + 12 + keyLen;
}

export const RESP_OK = 0x80;
export const RESP_VALUE = 0x81;
export const RESP_ERROR = 0xff;

export interface FrameSink {
  /** One response frame: its type, request id and body at buf[start, end). */
  frame(type: number, requestId: number, buf: Buffer, start: number, end: number): void;
}

const MAX_FRAME = 64 << 20;

/** Splits a byte stream into frames; only a frame straddling two chunks costs a copy. */
export class FrameScanner {
  private rest: Buffer | null = null;

  push(chunk: Buffer, sink: FrameSink): void {
    const buf = this.rest === null ? chunk : Buffer.concat([this.rest, chunk]);
    let p = 0;
    while (buf.length - p >= HEADER) {
      const len = buf.readUInt32BE(p);
      if (len < 5 || len > MAX_FRAME) throw new Error(`bad frame length ${len}`);
      if (buf.length - p < 4 + len) break;
      sink.frame(buf[p + 4]!, buf.readUInt32BE(p + 5), buf, p + HEADER, p + 4 + len);
      p += 4 + len;
    }
    this.rest = p < buf.length ? buf.subarray(p) : null;
  }
}
