// Small pieces of HTTP on uWebSockets.js: loading the addon, a reply helper that respects uWS's
// rules (a response may be answered once, and not after the client went away; answers given after
// an await must be corked), bounded body reading, JSON errors, and strict percent-decoding.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type * as UWS from 'uWebSockets.js';
import type { KvError } from './kv-ops.ts';

export type Uws = typeof UWS;
export type HttpResponse = UWS.HttpResponse;
export type HttpRequest = UWS.HttpRequest;

export type HttpImpl = 'uws' | 'node';

/** The uWS addon, or why it cannot be loaded here; tried once. */
let native: { uws: Uws } | { reason: string } | undefined;

/**
 * Loads the uWS addon itself (a binary per platform, arch and Node ABI), not the package's entry,
 * which on a Node version without a binary hands out a partial stand-in. Its header limit is read
 * when the addon loads, so it is set first: a 4 KiB key, percent-encoded, must fit in a URL.
 */
export function loadUws(): { uws: Uws } | { reason: string } {
  if (!native) {
    process.env.UWS_HTTP_MAX_HEADERS_SIZE ??= '16384';
    const require = createRequire(import.meta.url);
    const binary = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
    try {
      const dir = dirname(require.resolve('uWebSockets.js/package.json'));
      native = { uws: require(join(dir, 'binaries', binary)) as Uws };
    } catch (e) {
      native = { reason: `no uWebSockets.js binary ${binary} (Node ${process.version}): ${(e as Error).message.split('\n')[0]}` };
    }
  }
  return native;
}

/**
 * uWS where it loads, else node:http + ws (node-http.ts). KVS_HTTP_IMPL=node forces the fallback
 * (tests, benchmarks), KVS_HTTP_IMPL=uws forbids it. `fallback` says why uWS is not used.
 */
export async function httpImpl(env: NodeJS.ProcessEnv = process.env): Promise<{ impl: HttpImpl; uws: Uws; fallback?: string }> {
  const wanted = env.KVS_HTTP_IMPL ?? '';
  if (wanted !== '' && wanted !== 'uws' && wanted !== 'node') throw new Error(`KVS_HTTP_IMPL must be uws or node, got "${wanted}"`);
  const { nodeUws } = await import('./node-http.ts');
  if (wanted === 'node') return { impl: 'node', uws: nodeUws(), fallback: 'KVS_HTTP_IMPL=node' };
  const loaded = loadUws();
  if ('uws' in loaded) return { impl: 'uws', uws: loaded.uws };
  if (wanted === 'uws') throw new Error(`KVS_HTTP_IMPL=uws: ${loaded.reason}`);
  return { impl: 'node', uws: nodeUws(), fallback: loaded.reason };
}

const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  204: 'No Content',
  400: 'Bad Request',
  404: 'Not Found',
  405: 'Method Not Allowed',
  412: 'Precondition Failed',
  413: 'Payload Too Large',
  414: 'URI Too Long',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

export class Reply {
  private aborted = false;
  private done = false;

  /** `head`: answering HEAD, so the status and headers GET would send, without the body. */
  constructor(
    private readonly res: HttpResponse,
    private readonly head = false,
  ) {
    res.onAborted(() => {
      this.aborted = true;
    });
  }

  get finished(): boolean {
    return this.done || this.aborted;
  }

  send(status: number, body: string | Uint8Array, headers: Record<string, string> = {}, closeConnection = false): number {
    if (this.finished) return status;
    this.done = true;
    this.res.cork(() => {
      this.res.writeStatus(`${status} ${STATUS_TEXT[status] ?? ''}`);
      for (const [k, v] of Object.entries(headers)) this.res.writeHeader(k, v);
      if (this.head) {
        // A body after a HEAD answer would be read as the start of the next response on this
        // connection: only its length goes out (RFC 9110 9.3.2). Written by hand: uWS 20.30's
        // endWithoutBody(length) leaves the response unfinished, and so does any argument at all.
        this.res.writeHeader('Content-Length', String(Buffer.byteLength(body)));
        this.res.endWithoutBody();
      } else this.res.end(body, closeConnection);
    });
    return status;
  }

  json(status: number, value: unknown, headers: Record<string, string> = {}): number {
    return this.send(status, `${JSON.stringify(value)}\n`, { 'Content-Type': 'application/json', ...headers });
  }

  /** `{"error": {"code": ..., "message": ...}}`. */
  error(status: number, code: string, message: string, headers: Record<string, string> = {}, closeConnection = false): number {
    return this.send(status, `${JSON.stringify({ error: { code, message } })}\n`, { 'Content-Type': 'application/json', ...headers }, closeConnection);
  }
}

/** HTTP status and headers for our error codes. */
export function httpStatusOf(e: KvError): { status: number; headers: Record<string, string> } {
  const err = e.error;
  switch (err.code) {
    case 'BAD_REQUEST':
      return { status: 400, headers: {} };
    case 'TOO_LARGE':
      return { status: 413, headers: {} };
    case 'TIMEOUT':
      return { status: 504, headers: {} };
    case 'NOT_LEADER':
      return { status: 503, headers: { 'Retry-After': '1', ...(err.leaderAddr ? { 'X-Kvs-Leader': err.leaderAddr } : {}) } };
    case 'WRONG_GROUP':
    case 'UNAVAILABLE':
      return { status: 503, headers: { 'Retry-After': '1' } };
  }
}

/**
 * The Content-Length header's value, undefined without one, and a value that is no length when
 * there are several. getHeader gives '' both for no header and for an empty one, which uWS's
 * parser takes for 0, and gives only the first of several, where uWS takes the first too: either
 * way a body could be left unread and then parsed as the next request (request smuggling, when a
 * proxy in front takes another one).
 */
export function contentLength(req: HttpRequest): string | undefined {
  const values: string[] = [];
  req.forEach((key, value) => {
    if (key === 'content-length') values.push(value);
  });
  if (values.length === 0) return undefined;
  return values.length === 1 ? values[0] : values.join(', ');
}

/**
 * A body being received, in one buffer grown by doubling (never past the limit), not one Buffer
 * per chunk: a chunked body sent one byte per chunk would otherwise cost hundreds of bytes of
 * objects per byte under a limit that counts only payload bytes.
 */
export class BodyBuffer {
  private buf: Buffer = Buffer.alloc(0);
  private size = 0;
  constructor(private readonly limit: number) {}

  /** Bytes received. */
  get length(): number {
    return this.size;
  }

  /** Bytes allocated to hold them: at most twice `length` (or 4 KiB), and never over the limit. */
  get capacity(): number {
    return this.buf.length;
  }

  /** Buffers holding them: one, however many chunks they came in. */
  get buffers(): number {
    return this.size === 0 ? 0 : 1;
  }

  /** Copies the chunk in (the caller may reuse its memory); false, keeping nothing, past the limit. */
  append(chunk: ArrayBuffer): boolean {
    const need = this.size + chunk.byteLength;
    if (need > this.limit) return false;
    if (need > this.buf.length) {
      const grown = Buffer.allocUnsafeSlow(Math.min(this.limit, Math.max(need, 2 * this.buf.length, 4096)));
      this.buf.copy(grown, 0, 0, this.size);
      this.buf = grown;
    }
    this.buf.set(new Uint8Array(chunk), this.size);
    this.size = need;
    return true;
  }

  /** The body received: a view of the buffer. */
  bytes(): Buffer {
    return this.buf.subarray(0, this.size);
  }
}

/**
 * Reads the whole body, up to `limit` bytes. Must be called before the handler returns (uWS
 * delivers the body only to a handler registered synchronously). Past the limit the reply is
 * 413 and the connection is closed, so the rest of the body is never buffered; `onBody` then
 * gets null. Returns the body as it is being received (tests look at what it holds).
 */
export function readBody(res: HttpResponse, reply: Reply, limit: number, onBody: (body: Buffer | null) => void): BodyBuffer {
  const body = new BodyBuffer(limit);
  let over = false;
  res.onData((chunk, isLast) => {
    if (over || reply.finished) return;
    // Copied in: uWS reuses the chunk's memory after this callback.
    if (!body.append(chunk)) {
      over = true;
      reply.error(413, 'TOO_LARGE', `request body over ${limit} bytes`, {}, true);
      onBody(null);
      return;
    }
    if (isLast) onBody(body.bytes());
  });
  return body;
}

function hex(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

/** Percent-decodes a URL path segment into bytes; null if a '%' is not followed by two hex digits. */
export function percentDecode(s: string): Uint8Array | null {
  const raw = Buffer.from(s, 'utf8');
  const out = Buffer.allocUnsafe(raw.length);
  let n = 0;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c !== 0x25) {
      out[n++] = c;
      continue;
    }
    const hi = i + 2 < raw.length ? hex(raw[i + 1]!) : -1;
    const lo = hi >= 0 ? hex(raw[i + 2]!) : -1;
    if (lo < 0) return null;
    out[n++] = hi * 16 + lo;
    i += 2;
  }
  return out.subarray(0, n);
}

/** Percent-encodes key bytes for a URL path (unreserved characters stay). */
export function percentEncode(key: Uint8Array): string {
  let s = '';
  for (const c of key) {
    const unreserved = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e;
    s += unreserved ? String.fromCharCode(c) : `%${c.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return s;
}
