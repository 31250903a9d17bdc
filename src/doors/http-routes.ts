// The HTTP routes: probes and status (/healthz, /readyz, /metrics, /v1/status) and the key-value
// API (GET/PUT/DELETE /v1/kv/{key}, the key percent-encoded; values are raw bytes in bodies).
// Errors are JSON: {"error": {"code": ..., "message": ...}}.
import type { TemplatedApp } from 'uWebSockets.js';
import type { DoorContext } from './door-context.ts';
import { KvError, type KvOps } from './kv-ops.ts';
import { Reply, contentLength, httpStatusOf, percentDecode, readBody, type HttpRequest, type HttpResponse } from './http-util.ts';

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
const KV_PREFIX = '/v1/kv/';

type Handler = (res: HttpResponse, req: HttpRequest) => void;

type RouteFn = (reply: Reply, res: HttpResponse, req: HttpRequest) => number | Promise<number>;

/** Runs a route, timing it and counting it by its outcome (the HTTP status). */
function route(ctx: DoorContext, op: string, fn: RouteFn): Handler {
  return (res, req) => {
    const started = performance.now();
    const reply = new Reply(res, req.getMethod() === 'head'); // also the 404s and 405s of HEAD
    const done = (status: number): void => ctx.observe('http', op, (performance.now() - started) / 1000, status < 400 ? 'ok' : String(status));
    let r: number | Promise<number>;
    try {
      r = fn(reply, res, req);
    } catch (e) {
      r = internal(reply, e);
    }
    if (typeof r === 'number') done(r);
    else r.catch((e: unknown) => internal(reply, e)).then(done, () => {});
  };
}

function internal(reply: Reply, e: unknown): number {
  return reply.error(500, 'INTERNAL', e instanceof Error ? e.message : String(e));
}

function kvFailure(reply: Reply, e: unknown): number {
  if (!(e instanceof KvError)) return internal(reply, e);
  const { status, headers } = httpStatusOf(e);
  return reply.error(status, e.code, e.message, headers);
}

/** A GET route, and HEAD on the same path: the same answer without its body (RFC 9110 9.3.2). */
function getAndHead(app: TemplatedApp, ctx: DoorContext, pattern: string, op: string, fn: RouteFn): void {
  const handler = route(ctx, op, fn);
  app.get(pattern, handler);
  app.head(pattern, handler);
}

function methodNotAllowed(reply: Reply, method: string, allow: string): number {
  return reply.error(405, 'METHOD_NOT_ALLOWED', `${method.toUpperCase()} is not allowed here`, { Allow: allow });
}

export function mountOpsRoutes(app: TemplatedApp, ctx: DoorContext): void {
  getAndHead(app, ctx, '/healthz', 'healthz', (reply) => reply.send(200, 'ok\n', { 'Content-Type': 'text/plain' }));
  getAndHead(app, ctx, '/readyz', 'readyz', async (reply) => {
    const r = await ctx.ready();
    return reply.json(r.ready ? 200 : 503, r);
  });
  getAndHead(app, ctx, '/metrics', 'metrics', (reply) => reply.send(200, ctx.metricsText(), { 'Content-Type': PROMETHEUS_CONTENT_TYPE }));
  getAndHead(app, ctx, '/v1/status', 'status', (reply) => reply.json(200, ctx.status()));
  for (const path of ['/healthz', '/readyz', '/metrics', '/v1/status']) {
    app.any(path, route(ctx, 'bad_method', (reply, _res, req) => methodNotAllowed(reply, req.getMethod(), 'GET, HEAD')));
  }
}

/** The key from the path, or a reason it is not a usable key. */
function keyOf(url: string): Uint8Array | string {
  // uWS hands over the path as a string decoded as UTF-8, raw bytes that are not UTF-8 replaced by
  // U+FFFD: the bytes sent are lost, and storing the replacement would silently be another key.
  if (url.includes('\uFFFD')) return 'raw bytes in the path that are not UTF-8 (or U+FFFD): percent-encode the key';
  const key = percentDecode(url.slice(KV_PREFIX.length));
  if (key === null) return 'malformed percent-encoding in the key';
  if (key.length === 0) return 'the key is empty: use /v1/kv/{key}';
  return key;
}

export function mountKvRoutes(app: TemplatedApp, ctx: DoorContext, kv: KvOps): void {
  getAndHead(app, ctx, `${KV_PREFIX}*`, 'kv_get', (reply, _res, req) => {
    const key = keyOf(req.getUrl());
    if (typeof key === 'string') return reply.error(400, 'BAD_REQUEST', key);
    const c = req.getQuery('consistency') ?? ''; // undefined (not '') when the URL has no query at all
    if (c !== '' && c !== 'stale' && c !== 'linearizable') return reply.error(400, 'BAD_REQUEST', 'consistency must be "linearizable" or "stale"');
    return kv.get(key, c === 'stale' ? 'stale' : 'linearizable').then(
      (value) => (value === null ? reply.error(404, 'NOT_FOUND', 'key not found') : reply.send(200, value, { 'Content-Type': 'application/octet-stream' })),
      (e: unknown) => kvFailure(reply, e),
    );
  });

  app.put(`${KV_PREFIX}*`, route(ctx, 'kv_put', (reply, res, req) => {
    const key = keyOf(req.getUrl());
    const limit = kv.limits.maxValueBytes;
    const declared = contentLength(req);
    // A length that is not digits (uWS lets an empty one through, as 0) closes the connection: where
    // the body ends is unknown. Refuse what is announced too large before reading any of it. A 413
    // keeps the connection: the body is then read and dropped (never buffered), so a client still
    // uploading gets the answer instead of a reset (EPIPE) from a connection closed under it.
    if (declared !== undefined && !/^\d+$/.test(declared)) return reply.error(400, 'BAD_REQUEST', 'malformed Content-Length', {}, true);
    // A coding other than chunked (gzip, say) would be stored still coded: refused (RFC 9112
    // §6.1: 501), and the connection closed, as where the body ends is then the parser's guess.
    const coding = req.getHeader('transfer-encoding').trim().toLowerCase();
    if (coding !== '' && coding !== 'chunked') return reply.error(501, 'BAD_REQUEST', `transfer coding "${coding}" is not supported (only chunked)`, {}, true);
    if (declared !== undefined && Number(declared) > limit) {
      return reply.error(413, 'TOO_LARGE', `value of ${declared} bytes exceeds the limit of ${limit} bytes`);
    }
    // A key that cannot be stored is refused from the head too, before any of the body is read
    // (which is then dropped, as after a 413): it used to be checked only once the body was in.
    if (typeof key === 'string') return reply.error(400, 'BAD_REQUEST', key);
    try {
      kv.checkKey(key, true);
    } catch (e) {
      return kvFailure(reply, e);
    }
    return new Promise<number>((resolve) => {
      readBody(res, reply, limit, (body) => {
        if (body === null) return resolve(413);
        kv.put(key, body).then(
          () => resolve(reply.json(200, { ok: true })),
          (e: unknown) => resolve(kvFailure(reply, e)),
        );
      });
    });
  }));

  app.del(`${KV_PREFIX}*`, route(ctx, 'kv_delete', (reply, _res, req) => {
    const key = keyOf(req.getUrl());
    if (typeof key === 'string') return reply.error(400, 'BAD_REQUEST', key);
    return kv.delete(key).then(
      () => reply.json(200, { ok: true }),
      (e: unknown) => kvFailure(reply, e),
    );
  }));

  app.any(`${KV_PREFIX}*`, route(ctx, 'bad_method', (reply, _res, req) => methodNotAllowed(reply, req.getMethod(), 'GET, HEAD, PUT, DELETE')));
}

export function mountNotFound(app: TemplatedApp, ctx: DoorContext): void {
  app.any('/*', route(ctx, 'not_found', (reply, _res, req) => reply.error(404, 'NOT_FOUND', `no route for ${req.getMethod().toUpperCase()} ${req.getUrl().slice(0, 200)}`)));
}
