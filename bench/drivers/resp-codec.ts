// RESP for a load generator: SET and GET encoded in place from preallocated keys and values, and a
// reply scanner that only classifies replies (ok / nil / error), skipping bulk bodies by length.

const CRLF = Buffer.from('\r\n');

/** Constant pieces of SET k v / GET k for fixed key and value sizes, built once. */
export class RespTemplates {
  readonly setHead: Buffer;
  readonly setMid: Buffer;
  readonly getHead: Buffer;
  constructor(
    readonly keySize: number,
    readonly valueSize: number,
  ) {
    this.setHead = Buffer.from(`*3\r\n$3\r\nSET\r\n$${keySize}\r\n`);
    this.setMid = Buffer.from(`\r\n$${valueSize}\r\n`);
    this.getHead = Buffer.from(`*2\r\n$3\r\nGET\r\n$${keySize}\r\n`);
  }
  get setBytes(): number {
    return this.setHead.length + this.keySize + this.setMid.length + this.valueSize + 2;
  }
  get getBytes(): number {
    return this.getHead.length + this.keySize + 2;
  }
}

export function writeSet(t: RespTemplates, out: Buffer, p: number, keys: Buffer, keyOff: number, values: Buffer, valOff: number): number {
  p += t.setHead.copy(out, p);
  p += keys.copy(out, p, keyOff, keyOff + t.keySize);
  p += t.setMid.copy(out, p);
  p += values.copy(out, p, valOff, valOff + t.valueSize);
  return p + CRLF.copy(out, p);
}

export function writeGetCmd(t: RespTemplates, out: Buffer, p: number, keys: Buffer, keyOff: number): number {
  p += t.getHead.copy(out, p);
  p += keys.copy(out, p, keyOff, keyOff + t.keySize);
  return p + CRLF.copy(out, p);
}

export const REPLY_OK = 0;
export const REPLY_NIL = 1;
export const REPLY_ERROR = 2;

export interface ReplySink {
  reply(kind: number, errorText: string): void;
}

const S_TYPE = 0; // expecting a reply's type byte
const S_LINE = 1; // reading the rest of a header line (number or simple string)
const S_BULK = 2; // skipping a bulk body and its CRLF

/**
 * Streaming classifier of top-level RESP2 replies (+, -, :, $; arrays are not needed by SET/GET).
 * State survives chunk boundaries, so no chunk is ever copied.
 */
export class ReplyScanner {
  private state = S_TYPE;
  private type = 0;
  private num = 0;
  private neg = false;
  private skip = 0;
  private err = '';

  push(chunk: Buffer, sink: ReplySink): void {
    let p = 0;
    const n = chunk.length;
    while (p < n) {
      if (this.state === S_TYPE) {
        this.type = chunk[p++]!;
        this.num = 0;
        this.neg = false;
        this.err = '';
        if (this.type !== 0x2b && this.type !== 0x2d && this.type !== 0x3a && this.type !== 0x24) {
          throw new Error(`unexpected RESP reply type ${JSON.stringify(String.fromCharCode(this.type))}`);
        }
        this.state = S_LINE;
      } else if (this.state === S_LINE) {
        const nl = chunk.indexOf(0x0a, p);
        const end = nl < 0 ? n : nl;
        if (this.type === 0x24) {
          for (let i = p; i < end; i++) {
            const c = chunk[i]!;
            if (c === 0x2d) this.neg = true;
            else if (c >= 0x30 && c <= 0x39) this.num = this.num * 10 + (c - 0x30);
          }
        } else if (this.type === 0x2d && this.err.length < 200) {
          this.err += chunk.toString('latin1', p, end).replace(/\r$/, '');
        }
        if (nl < 0) return;
        p = nl + 1;
        if (this.type === 0x24 && !this.neg) {
          this.skip = this.num + 2;
          this.state = S_BULK;
        } else {
          this.state = S_TYPE;
          const kind = this.type === 0x2d ? REPLY_ERROR : this.type === 0x24 ? REPLY_NIL : REPLY_OK;
          sink.reply(kind, this.err);
        }
      } else {
        const take = Math.min(this.skip, n - p);
        p += take;
        this.skip -= take;
        if (this.skip === 0) {
          this.state = S_TYPE;
          sink.reply(REPLY_OK, '');
        }
      }
    }
  }
}
