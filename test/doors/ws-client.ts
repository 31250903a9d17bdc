// A minimal RFC 6455 WebSocket client over `net`, for tests (Node 20 has no WebSocket client):
// the opening handshake, masked frames out, unmasked frames in (with continuation frames), ping →
// pong, and the closing handshake. Plus NativeWs: the native protocol over it, pipelined.
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { FrameDecoder, decodeResponse, encodeRequest, type Request, type Response } from '../../src/wire/index.ts';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
export const Opcode = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

export interface WsMessage {
  binary: boolean;
  data: Buffer;
}

export class WsClient {
  private buf: Buffer = Buffer.alloc(0);
  private fragments: Buffer[] = [];
  private fragmentOpcode = 0;
  private readonly messages: WsMessage[] = [];
  private readonly waiters: ((m: WsMessage) => void)[] = [];
  /** Resolves with the server's close code (1006 if the connection dropped without one). */
  readonly closed: Promise<{ code: number; reason: string }>;
  private closeInfo: { code: number; reason: string } | undefined;
  onMessage: ((m: WsMessage) => void) | undefined;

  private constructor(
    readonly socket: net.Socket,
    rest: Buffer,
  ) {
    this.closed = new Promise((resolve) => {
      socket.on('close', () => resolve(this.closeInfo ?? { code: 1006, reason: '' }));
    });
    socket.on('data', (chunk) => this.feed(chunk));
    socket.on('error', () => {});
    if (rest.length > 0) this.feed(rest);
  }

  static connect(port: number, path = '/v1/ws', host = '127.0.0.1'): Promise<WsClient> {
    return new Promise((resolve, reject) => {
      const key = randomBytes(16).toString('base64');
      const s = net.connect({ host, port }, () => {
        s.write(`GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
      });
      let head = Buffer.alloc(0);
      const onData = (chunk: Buffer): void => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        s.off('data', onData);
        const text = head.subarray(0, end).toString();
        const accept = createHash('sha1').update(key + GUID).digest('base64');
        if (!/^HTTP\/1\.1 101/.test(text) || !text.toLowerCase().includes(`sec-websocket-accept: ${accept.toLowerCase()}`)) {
          s.destroy();
          reject(new Error(`handshake refused: ${text.split('\r\n')[0]}`));
          return;
        }
        resolve(new WsClient(s, head.subarray(end + 4)));
      };
      s.on('data', onData);
      s.once('error', reject);
    });
  }

  /** One frame, masked as a client must. */
  sendFrame(opcode: number, payload: Uint8Array, fin = true): void {
    const len = payload.length;
    const header = len < 126 ? Buffer.alloc(2) : len < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
    header[0] = (fin ? 0x80 : 0) | opcode;
    if (len < 126) header[1] = 0x80 | len;
    else if (len < 65536) {
      header[1] = 0x80 | 126;
      header.writeUInt16BE(len, 2);
    } else {
      header[1] = 0x80 | 127;
      header.writeBigUInt64BE(BigInt(len), 2);
    }
    const mask = randomBytes(4);
    const body = Buffer.allocUnsafe(len);
    for (let i = 0; i < len; i++) body[i] = payload[i]! ^ mask[i & 3]!;
    this.socket.write(Buffer.concat([header, mask, body]));
  }

  sendBinary(payload: Uint8Array): void {
    this.sendFrame(Opcode.binary, payload);
  }

  sendText(text: string): void {
    this.sendFrame(Opcode.text, Buffer.from(text));
  }

  close(code = 1000): void {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(code);
    this.sendFrame(Opcode.close, b);
  }

  destroy(): void {
    this.socket.destroy();
  }

  next(): Promise<WsMessage> {
    const m = this.messages.shift();
    if (m) return Promise.resolve(m);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private feed(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    for (;;) {
      if (this.buf.length < 2) return;
      const fin = (this.buf[0]! & 0x80) !== 0;
      const opcode = this.buf[0]! & 0x0f;
      let len = this.buf[1]! & 0x7f;
      let at = 2;
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = this.buf.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return;
        len = Number(this.buf.readBigUInt64BE(2));
        at = 10;
      }
      if (this.buf.length < at + len) return;
      const payload = Buffer.from(this.buf.subarray(at, at + len));
      this.buf = this.buf.subarray(at + len);
      this.frame(fin, opcode, payload);
    }
  }

  private frame(fin: boolean, opcode: number, payload: Buffer): void {
    if (opcode === Opcode.ping) return this.sendFrame(Opcode.pong, payload);
    if (opcode === Opcode.pong) return;
    if (opcode === Opcode.close) {
      this.closeInfo = { code: payload.length >= 2 ? payload.readUInt16BE(0) : 1005, reason: payload.subarray(2).toString() };
      if (!this.socket.destroyed) this.sendFrame(Opcode.close, payload.subarray(0, 2));
      this.socket.end();
      return;
    }
    if (opcode !== Opcode.continuation) this.fragmentOpcode = opcode;
    this.fragments.push(payload);
    if (!fin) return;
    const m = { binary: this.fragmentOpcode === Opcode.binary, data: Buffer.concat(this.fragments) };
    this.fragments = [];
    if (this.onMessage) return this.onMessage(m);
    const w = this.waiters.shift();
    if (w) w(m);
    else this.messages.push(m);
  }
}

/** The native protocol over a WebSocket: requests pipelined, answers matched by request id. */
export class NativeWs {
  private readonly decoder = new FrameDecoder();
  private readonly pending = new Map<number, (r: Response) => void>();
  private nextId = 1;
  /** Responses in arrival order (request ids), for order checks. */
  readonly arrivals: number[] = [];

  constructor(readonly ws: WsClient) {
    ws.onMessage = (m) => {
      this.decoder.push(m.data);
      for (let f = this.decoder.read(); f !== null; f = this.decoder.read()) {
        this.arrivals.push(f.requestId);
        const p = this.pending.get(f.requestId);
        this.pending.delete(f.requestId);
        p?.(decodeResponse(f.type, f.body));
      }
    };
  }

  static async connect(port: number, host = '127.0.0.1'): Promise<NativeWs> {
    return new NativeWs(await WsClient.connect(port, '/v1/ws', host));
  }

  /** Sends the requests as native frames, `perMessage` frames to a WebSocket message. */
  send(requests: Request[], perMessage = requests.length): Promise<Response[]> {
    const answers: Promise<Response>[] = [];
    const frames: Buffer[] = [];
    for (const req of requests) {
      const id = this.nextId++;
      answers.push(new Promise((resolve) => this.pending.set(id, resolve)));
      frames.push(encodeRequest(id, req));
    }
    for (let i = 0; i < frames.length; i += perMessage) this.ws.sendBinary(Buffer.concat(frames.slice(i, i + perMessage)));
    return Promise.all(answers);
  }

  async one(req: Request): Promise<Response> {
    return (await this.send([req]))[0]!;
  }

  close(): void {
    this.ws.destroy();
  }
}
