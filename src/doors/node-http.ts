// The HTTP and WebSocket doors without uWebSockets.js: the subset of uWS's API our routes
// (http-routes.ts, ws-door.ts) use, on node:http and `ws`. Used where the uWS addon does not load
// (a Node version it has no binary for) or when KVS_HTTP_IMPL=node; the routes and their behaviour
// are the same (test/doors/http-ws.test.ts runs against both). Request handlers run in
// registration order, the first whose method and pattern match (patterns: exact, or a `/*` tail).
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket as NodeWs } from 'ws';
import type { HttpRequest as UwsRequest, HttpResponse as UwsResponse, TemplatedApp, WebSocket as UwsWebSocket, WebSocketBehavior } from 'uWebSockets.js';
import type { Uws } from './http-util.ts';

type Handler = (res: UwsResponse, req: UwsRequest) => void;

interface Route {
  method: string; // lower case, or '*'
  pattern: string;
  handler: Handler;
}

function matches(pattern: string, path: string): boolean {
  return pattern.endsWith('/*') ? path.startsWith(pattern.slice(0, -1)) : path === pattern;
}

/** uWS's HttpRequest over an IncomingMessage: path without query, lower-case method, '' for a missing header. */
class Request {
  private readonly path: string;
  private readonly query: string | undefined;
  constructor(private readonly req: http.IncomingMessage) {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    this.path = q < 0 ? url : url.slice(0, q);
    this.query = q < 0 ? undefined : url.slice(q + 1);
  }
  getUrl(): string {
    return this.path;
  }
  getMethod(): string {
    return (this.req.method ?? 'GET').toLowerCase();
  }
  getHeader(name: string): string {
    const v = this.req.headers[name];
    return Array.isArray(v) ? v.join(', ') : (v ?? '');
  }
  /** Every header, names in lower case. */
  forEach(cb: (key: string, value: string) => void): void {
    const raw = this.req.rawHeaders;
    for (let i = 0; i + 1 < raw.length; i += 2) cb(raw[i]!.toLowerCase(), raw[i + 1]!);
  }
  /** undefined without a query string, as uWS. */
  getQuery(key?: string): string | undefined {
    if (key === undefined || this.query === undefined) return this.query;
    return new URLSearchParams(this.query).get(key) ?? undefined;
  }
}

/** Whether a request announces a body (a length other than 0, or a transfer coding). */
function announcesBody(req: http.IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length.trim() !== '0');
}

/** uWS's HttpResponse over a ServerResponse: status line, headers, one end(), body chunks, abort. */
class Response {
  private status = 200;
  private readonly headers: [string, string][] = [];
  private abortHandler: (() => void) | undefined;
  /**
   * `expectsContinue`: the client sent `Expect: 100-continue` and waits for `100 Continue` before
   * sending its body. It gets one only once the route reads the body, so a route that answers from
   * the head alone (413 for a Content-Length over the limit, 400, 405, ...) answers at once,
   * without inviting a body it would drop (RFC 9110 §10.1.1).
   */
  constructor(
    private readonly req: http.IncomingMessage,
    private readonly res: http.ServerResponse,
    private expectsContinue = false,
  ) {
    res.on('close', () => {
      if (!res.writableFinished) this.abortHandler?.();
    });
  }
  onAborted(fn: () => void): this {
    this.abortHandler = fn;
    return this;
  }
  cork(fn: () => void): this {
    fn();
    return this;
  }
  writeStatus(line: string): this {
    this.status = Number.parseInt(line, 10);
    return this;
  }
  writeHeader(k: string, v: string): this {
    this.headers.push([k, v]);
    return this;
  }
  end(body: string | Uint8Array = '', closeConnection = false): this {
    const res = this.res;
    res.statusCode = this.status;
    for (const [k, v] of this.headers) res.setHeader(k, v);
    // Answered before the body was asked for: the client may send it after all or never (RFC 9110
    // §10.1.1), so where the next request would start is unknown, and the connection closes.
    if (this.expectsContinue && announcesBody(this.req)) closeConnection = true;
    if (closeConnection) res.setHeader('Connection', 'close');
    res.end(body);
    // Past a refused body the rest of it is not read: the connection goes.
    if (closeConnection) res.once('finish', () => this.req.socket.destroySoon());
    return this;
  }
  /** The answer to HEAD: status and headers (and, given, the length the body would have had). */
  endWithoutBody(reportedContentLength?: number, closeConnection = false): this {
    if (reportedContentLength !== undefined) this.writeHeader('Content-Length', String(reportedContentLength));
    return this.end('', closeConnection);
  }
  /** The body in chunks, the last one (possibly empty) with isLast. */
  onData(fn: (chunk: ArrayBuffer, isLast: boolean) => void): this {
    if (this.expectsContinue) {
      this.expectsContinue = false;
      this.res.writeContinue();
    }
    this.req.on('data', (b: Buffer) => fn(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer, false));
    this.req.on('end', () => fn(new ArrayBuffer(0), true));
    return this;
  }
}

/** uWS's WebSocket over a `ws` socket. */
class Socket<T> {
  private readonly data = {} as T;
  constructor(readonly ws: NodeWs) {}
  getUserData(): T {
    return this.data;
  }
  send(bytes: Uint8Array | ArrayBuffer | string, isBinary = false): number {
    this.ws.send(bytes, { binary: isBinary });
    return 1;
  }
  end(code?: number, reason?: string): void {
    this.ws.close(code, reason);
  }
  cork(fn: () => void): this {
    fn();
    return this;
  }
  getBufferedAmount(): number {
    return this.ws.bufferedAmount;
  }
}

/** A request node's HTTP parser refused: the status and JSON error the client gets, or null. */
function parserRefusal(e: { code?: string; reason?: string }): { status: number; code: string; message: string } | null {
  switch (e.code) {
    case 'HPE_HEADER_OVERFLOW':
      return { status: 431, code: 'TOO_LARGE', message: 'request line and headers over 16384 bytes' };
    case 'HPE_INVALID_CONTENT_LENGTH':
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
      return { status: 400, code: 'BAD_REQUEST', message: 'malformed Content-Length' };
    default:
      // Timeouts and resets have nobody to answer.
      if (!e.code?.startsWith('HPE_')) return null;
      return { status: 400, code: 'BAD_REQUEST', message: `malformed HTTP request: ${e.reason ?? e.code}` };
  }
}

/**
 * Answers what the parser refused, as the routes answer errors, then closes: the stream cannot be
 * resynchronised. Only when no response is under way on the connection, whose bytes the answer would
 * interleave with (node's own default rule, which answers no JSON).
 */
function refuse(e: Error & { code?: string; reason?: string }, socket: Duplex): void {
  const refusal = parserRefusal(e);
  const busy = (socket as Duplex & { _httpMessage?: unknown })._httpMessage;
  if (refusal === null || !socket.writable || busy) {
    socket.destroy();
    return;
  }
  const body = `${JSON.stringify({ error: { code: refusal.code, message: refusal.message } })}\n`;
  socket.end(`HTTP/1.1 ${refusal.status} ${http.STATUS_CODES[refusal.status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  socket.once('finish', () => socket.destroy());
}

class App {
  private readonly routes: Route[] = [];
  private readonly sockets: { pattern: string; behavior: WebSocketBehavior<unknown>; wss: WebSocketServer }[] = [];
  private readonly server: http.Server;

  constructor() {
    // A 4 KiB key, percent-encoded, must fit in the URL (as uWS's 16 KiB header limit allows).
    this.server = http.createServer({ maxHeaderSize: 16384 }, (req, res) => this.request(req, res));
    this.server.on('upgrade', (req, socket, head) => this.upgrade(req, socket, head));
    // Without this listener node:http answers `100 Continue` itself, before any route could refuse the
    // request from its head (a Content-Length over the limit got 100 Continue, then 413).
    this.server.on('checkContinue', (req, res) => this.request(req, res, true));
    this.server.on('clientError', (e: Error & { code?: string; reason?: string }, socket: Duplex) => refuse(e, socket));
  }

  private add(method: string, pattern: string, handler: Handler): this {
    this.routes.push({ method, pattern, handler });
    return this;
  }
  get(p: string, h: Handler): this {
    return this.add('get', p, h);
  }
  head(p: string, h: Handler): this {
    return this.add('head', p, h);
  }
  put(p: string, h: Handler): this {
    return this.add('put', p, h);
  }
  post(p: string, h: Handler): this {
    return this.add('post', p, h);
  }
  del(p: string, h: Handler): this {
    return this.add('delete', p, h);
  }
  any(p: string, h: Handler): this {
    return this.add('*', p, h);
  }

  ws<T>(pattern: string, behavior: WebSocketBehavior<T>): this {
    const wss = new WebSocketServer({ noServer: true, maxPayload: behavior.maxPayloadLength ?? 16 * 1024, perMessageDeflate: false });
    wss.on('connection', (w: NodeWs) => this.serveSocket(w, behavior));
    this.sockets.push({ pattern, behavior: behavior as WebSocketBehavior<unknown>, wss });
    return this;
  }

  private serveSocket<T>(w: NodeWs, b: WebSocketBehavior<T>): void {
    w.binaryType = 'arraybuffer';
    const s = new Socket<T>(w) as unknown as UwsWebSocket<T>;
    const maxBackpressure = b.maxBackpressure ?? 64 * 1024;
    // uWS's idle timeout with automatic pings: a peer silent for the timeout (no pong either) is dropped.
    let alive = true;
    const idleMs = (b.idleTimeout ?? 120) * 1000;
    const pinger = setInterval(() => {
      if (!alive) return void w.terminate();
      alive = false;
      if (b.sendPingsAutomatically !== false) w.ping();
    }, idleMs / 2);
    pinger.unref();
    w.on('pong', () => (alive = true));
    const raw = (w as unknown as { _socket: Duplex })._socket;
    // uWS's drain: the socket flushed what was waiting.
    raw.on('drain', () => b.drain?.(s));
    b.open?.(s);
    // uWS's closeOnBackpressureLimit: past maxBackpressure of unsent output the connection goes.
    // Checked after anything that writes: our answers, and the pongs ws sends by itself for pings
    // (a client sending pings and never reading would otherwise grow them without bound).
    const overBackpressure = (): boolean => {
      if (!b.closeOnBackpressureLimit || w.bufferedAmount <= maxBackpressure) return false;
      w.terminate();
      return true;
    };
    w.on('message', (data: ArrayBuffer, isBinary: boolean) => {
      alive = true;
      b.message?.(s, data, isBinary);
      overBackpressure();
    });
    w.on('ping', () => void overBackpressure());
    w.on('close', (code: number, reason: Buffer) => {
      clearInterval(pinger);
      b.close?.(s, code, reason.buffer.slice(reason.byteOffset, reason.byteOffset + reason.byteLength) as ArrayBuffer);
    });
    w.on('error', () => w.terminate());
  }

  private request(req: http.IncomingMessage, res: http.ServerResponse, expectsContinue = false): void {
    const r = new Request(req);
    const method = r.getMethod();
    const path = r.getUrl();
    const route = this.routes.find((x) => (x.method === method || x.method === '*') && matches(x.pattern, path));
    if (!route) {
      res.statusCode = 404;
      if (expectsContinue) res.setHeader('Connection', 'close');
      res.end();
      return;
    }
    route.handler(new Response(req, res, expectsContinue) as unknown as UwsResponse, r as unknown as UwsRequest);
  }

  private upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = new Request(req).getUrl();
    const target = this.sockets.find((x) => matches(x.pattern, path));
    if (!target) {
      // node:http takes its 'error' listener off a socket it hands to 'upgrade': unheard, a client
      // resetting the connection after the 404 was an uncaught exception that ended the process.
      socket.on('error', () => {});
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    target.wss.handleUpgrade(req, socket, head, (w) => target.wss.emit('connection', w, req));
  }

  listen(host: string, port: number, cb: (listening: unknown) => void): this {
    const onError = (): void => cb(false);
    this.server.once('error', onError);
    this.server.listen({ host, port }, () => {
      this.server.off('error', onError);
      // As uWS: a connection it failed to accept (ENOMEM) is lost, the door listens on; unheard,
      // the listening server's 'error' would end the process.
      this.server.on('error', () => {});
      cb(this.server);
    });
    return this;
  }

  /** The listening socket and every connection, HTTP and WebSocket, so the process can exit. */
  close(): void {
    this.server.close();
    this.server.closeAllConnections();
    for (const { wss } of this.sockets) {
      for (const c of wss.clients) c.terminate();
      wss.close();
    }
  }
}

/** The part of the uWS module the doors use, implemented on node:http and ws. */
export function nodeUws(): Uws {
  return {
    App: () => new App() as unknown as TemplatedApp,
    DISABLED: 0,
    us_socket_local_port: (s: unknown) => ((s as http.Server).address() as { port: number }).port,
  } as unknown as Uws;
}
