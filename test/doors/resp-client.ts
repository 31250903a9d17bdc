// A minimal RESP client for tests: pipelined commands over one socket, replies decoded with the
// door's own reply decoder, raw bytes for malformed-input tests.
import net from 'node:net';
import { RespReplyDecoder } from '../../src/doors/resp-reply-decoder.ts';
import type { RespValue } from '../../src/doors/resp-codec.ts';

export function encodeCommand(args: (string | Uint8Array)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a) : Buffer.from(a);
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

export class RespClient {
  private readonly decoder = new RespReplyDecoder();
  private readonly waiting: ((v: RespValue) => void)[] = [];
  /** Replies that arrived before anyone asked for them. */
  private readonly unclaimed: RespValue[] = [];
  private closedWaiters: (() => void)[] = [];
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk) => {
      this.decoder.push(chunk);
      for (let v = this.decoder.next(); v !== undefined; v = this.decoder.next()) {
        const w = this.waiting.shift();
        if (w) w(v);
        else this.unclaimed.push(v);
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.closedWaiters.splice(0)) w();
    });
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RespClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host, port }, () => resolve(new RespClient(s)));
      s.once('error', reject);
    });
  }

  /** The next reply, whatever sent it. */
  reply(): Promise<RespValue> {
    const early = this.unclaimed.shift();
    if (early) return Promise.resolve(early);
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new Error('connection closed'));
      let settled = false;
      this.waiting.push((v) => {
        settled = true;
        resolve(v);
      });
      this.closedWaiters.push(() => {
        if (!settled) reject(new Error('connection closed before a reply'));
      });
    });
  }

  call(...args: (string | Uint8Array)[]): Promise<RespValue> {
    const r = this.reply();
    this.socket.write(encodeCommand(args));
    return r;
  }

  /** Sends every command in one write, then collects the replies in order. */
  pipeline(commands: (string | Uint8Array)[][]): Promise<RespValue[]> {
    const replies = commands.map(() => this.reply());
    this.socket.write(Buffer.concat(commands.map(encodeCommand)));
    return Promise.all(replies);
  }

  raw(bytes: Uint8Array | string): void {
    this.socket.write(bytes);
  }

  whenClosed(): Promise<void> {
    return this.closed ? Promise.resolve() : new Promise((r) => this.closedWaiters.push(r));
  }

  close(): void {
    this.socket.destroy();
  }

  /** Aborts the connection (a reset, not an orderly close): the server sees it as gone at once. */
  reset(): void {
    this.socket.resetAndDestroy();
  }

  /** Stops sending (half-close), still reading replies, as `nc -N` or `shutdown(SHUT_WR)` does. */
  endInput(): void {
    this.socket.end();
  }
}

/** A reply as plain data for assertions: strings, numbers, null, arrays; errors as {error}. */
export function plain(v: RespValue): unknown {
  switch (v.type) {
    case 'simple':
      return v.value;
    case 'error':
      return { error: v.value };
    case 'int':
      return typeof v.value === 'bigint' ? v.value : v.value;
    case 'bulk':
    case 'verbatim':
      return Buffer.from(v.value).toString();
    case 'null':
      return null;
    case 'array':
    case 'set':
    case 'push':
      return v.value.map(plain);
    case 'map':
      return Object.fromEntries(v.value.map(([k, x]) => [String(plain(k)), plain(x)]));
    case 'bool':
    case 'double':
    case 'bignum':
      return v.value;
  }
}
