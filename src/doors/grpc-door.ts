// The gRPC door: service protos.KV from protos/kv.proto, loaded at start-up (no generated code), on
// @grpc/grpc-js. Every RPC is a thin call on KvOps. Requests are checked strictly against the
// schema before protobufjs decodes them (protobuf-check.ts), and our error codes map onto gRPC
// status codes (see kv.proto's header and docs/doors.md). Beside it: the standard health service
// (grpc-health.ts) and server reflection (v1 and v1alpha, so grpcurl works without the .proto).
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { errorVerdict, pause } from '../cluster/group-call.ts';
import { DEFAULT_MAX_FRAME_BYTES, type BatchOp } from '../wire/index.ts';
import type { Door, DoorContext } from './door-context.ts';
import { KvError, KvOps } from './kv-ops.ts';
import { ProtobufError, checkMessage, type MessageDescriptor } from './protobuf-check.ts';
import { HEALTH_PROTO_PATH, HEALTH_SERVICE, HealthService } from './grpc-health.ts';
import { listenAddress } from '../address/listen.ts';

export const KV_PROTO_PATH = fileURLToPath(new URL('../../protos/kv.proto', import.meta.url));

const LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true };

/**
 * Marks a request whose bytes failed the strict check; the handler answers INVALID_ARGUMENT, or
 * RESOURCE_EXHAUSTED (TOO_LARGE) for one with too many fields.
 */
const MALFORMED = Symbol('malformed');
type Checked<T> = T & { [MALFORMED]?: { why: string; tooLarge: boolean } };

/** The answer to a request the strict check refused, or undefined. */
function refusal(req: unknown): RpcError | undefined {
  const bad = (req as Checked<object>)[MALFORMED];
  if (bad === undefined) return undefined;
  if (!bad.tooLarge) return new RpcError(grpc.status.INVALID_ARGUMENT, `malformed request: ${bad.why}`);
  const md = new grpc.Metadata();
  md.set('kvs-error', 'TOO_LARGE');
  return new RpcError(grpc.status.RESOURCE_EXHAUSTED, `request too large: ${bad.why}`, md);
}

/** A status the door answers with (grpc-js reads code, details and metadata). */
class RpcError extends Error {
  constructor(
    readonly code: grpc.status,
    readonly details: string,
    readonly metadata = new grpc.Metadata(),
  ) {
    super(details);
    // Malformed or invalid requests are our BAD_REQUEST, whichever check refused them.
    if (code === grpc.status.INVALID_ARGUMENT && metadata.get('kvs-error').length === 0) metadata.set('kvs-error', 'BAD_REQUEST');
  }
}

/**
 * Until the stream can take more, or the call is over: a call the client cancelled never drains,
 * and a scan waiting for that would hang for the life of the process.
 */
function writableOrGone(call: grpc.ServerWritableStream<unknown, unknown>): Promise<void> {
  if (call.cancelled) return Promise.resolve();
  return new Promise((resolve) => {
    const events = ['drain', 'cancelled', 'close', 'error', 'finish'] as const;
    const done = (): void => {
      for (const e of events) call.off(e, done);
      resolve();
    };
    for (const e of events) call.on(e, done);
  });
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Our error codes as gRPC statuses (rationale in docs/doors.md). */
export function statusOf(e: unknown): RpcError {
  if (e instanceof RpcError) return e;
  if (e instanceof KvError) {
    const md = new grpc.Metadata();
    md.set('kvs-error', e.code);
    const err = e.error;
    switch (err.code) {
      case 'NOT_LEADER':
        if (err.leaderAddr) md.set('kvs-leader', err.leaderAddr);
        return new RpcError(grpc.status.UNAVAILABLE, `no leader: ${err.message}`, md);
      case 'WRONG_GROUP':
        md.set('kvs-epoch', String(err.epoch));
        return new RpcError(grpc.status.ABORTED, `the key's partition moved (epoch ${err.epoch}): ${err.message}`, md);
      case 'TOO_LARGE':
        return new RpcError(grpc.status.RESOURCE_EXHAUSTED, err.message, md);
      case 'TIMEOUT':
        return new RpcError(grpc.status.DEADLINE_EXCEEDED, err.message, md);
      case 'UNAVAILABLE':
        return new RpcError(grpc.status.UNAVAILABLE, err.message, md);
      case 'BAD_REQUEST':
        return new RpcError(grpc.status.INVALID_ARGUMENT, err.message, md);
    }
  }
  return new RpcError(grpc.status.INTERNAL, e instanceof Error ? e.message : String(e));
}

const OUTCOME: Partial<Record<grpc.status, string>> = {
  [grpc.status.NOT_FOUND]: 'NOT_FOUND',
  [grpc.status.INVALID_ARGUMENT]: 'BAD_REQUEST',
};

function outcome(e: RpcError): string {
  return e.metadata.get('kvs-error')[0]?.toString() ?? OUTCOME[e.code] ?? grpc.status[e.code] ?? 'INTERNAL';
}

function checked<T>(req: Checked<T>): T {
  const refused = refusal(req);
  if (refused) throw refused;
  return req;
}

function bytes(v: Uint8Array | undefined | null): Buffer {
  return v ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : Buffer.alloc(0);
}

/** A field that may be absent (a one-field oneof in kv.proto): present only when it was on the wire. */
function optional(v: Uint8Array | undefined | null): Buffer | null {
  return v === undefined || v === null ? null : bytes(v);
}

interface Handlers {
  [name: string]: grpc.UntypedHandleCall;
}

/** How long a call without a deadline of its own retries answers that say "not applied, try again". */
export const NO_DEADLINE_RETRY_MS = 10_000;

/**
 * Retrying stops this long before the call's deadline (or a quarter of the time left, if less), so
 * that the door's own answer (UNAVAILABLE, `kvs-error: NOT_LEADER`: not applied, safe to retry)
 * reaches the client before its deadline does. Retrying up to the deadline itself left every
 * client with a deadline only its own DEADLINE_EXCEEDED, which says "may have applied".
 */
export const DEADLINE_MARGIN_MS = 250;

/**
 * `attempt`, again while it fails with an answer that says it did not apply (an election:
 * NOT_LEADER; for a read, `resendSafe`, UNAVAILABLE and TIMEOUT too), until the call's deadline.
 * The router waits out an election only up to its own request timeout (5 s), and a replica that
 * has known no leader for 1.5 s answers NOT_LEADER at once so that clients try another replica;
 * gRPC clients do neither, so a Scan with a 55 s deadline failed UNAVAILABLE during an election.
 * The retry rule is the one the client library and the relay use (group-call.ts).
 */
async function untilDeadline<T>(call: { getDeadline(): grpc.Deadline; readonly cancelled: boolean }, resendSafe: boolean, attempt: () => Promise<T>): Promise<T> {
  const d = call.getDeadline();
  const asked = d instanceof Date ? d.getTime() : d;
  const now = Date.now();
  const deadline = Number.isFinite(asked) ? asked - Math.min(DEADLINE_MARGIN_MS, Math.max(0, asked - now) / 4) : now + NO_DEADLINE_RETRY_MS;
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (e) {
      if (!(e instanceof KvError) || call.cancelled || Date.now() >= deadline) throw e;
      // A write is repeated only after NOT_LEADER (it was not appended): this door's writes carry
      // no session, so nothing else is resent.
      const verdict = errorVerdict(e.error, resendSafe);
      if (verdict !== 'not-leader' && !(resendSafe && verdict === 'retry')) throw e;
      await pause(n, deadline);
    }
  }
}

export function kvHandlers(ctx: DoorContext, kv: KvOps): Handlers {
  /** `read`: the call has no effect, so it is retried after a TIMEOUT too. */
  const unary = <Req, Res>(op: string, read: boolean, fn: (req: Req) => Promise<Res>): grpc.handleUnaryCall<Checked<Req>, Res> => {
    return (call, callback) => {
      const started = performance.now();
      const done = (result: string): void => ctx.observe('grpc', op, (performance.now() - started) / 1000, result);
      Promise.resolve()
        .then(() => {
          const req = checked(call.request);
          return untilDeadline(call, read, () => fn(req));
        })
        .then(
          (res) => {
            done('ok');
            callback(null, res);
          },
          (e: unknown) => {
            const st = statusOf(e);
            done(outcome(st));
            callback({ code: st.code, details: st.details, metadata: st.metadata });
          },
        );
    };
  };

  const scan: grpc.handleServerStreamingCall<Checked<{ start: Uint8Array; end?: Uint8Array | null; limit: number; stale: boolean }>, { key: Uint8Array; value: Uint8Array }> = (call) => {
    const started = performance.now();
    void (async () => {
      try {
        const req = checked(call.request);
        const end = optional(req.end);
        const consistency = req.stale ? 'stale' : 'linearizable';
        let left = req.limit > 0 ? req.limit : Infinity;
        let from: Uint8Array | null = bytes(req.start);
        while (from !== null && left > 0 && !call.cancelled) {
          const at: Uint8Array = from;
          const page: Awaited<ReturnType<KvOps['scan']>> = await untilDeadline(call, true, () => kv.scan(at, end, Math.min(left, 1000), consistency));
          for (const item of page.items) {
            if (call.cancelled) break;
            left--;
            // Honour the client's flow control: wait for the stream to drain before the next page.
            if (!call.write({ key: item.key, value: item.value })) await writableOrGone(call);
          }
          from = page.more;
        }
        ctx.observe('grpc', 'scan', (performance.now() - started) / 1000, call.cancelled ? 'CANCELLED' : 'ok');
        if (!call.cancelled) call.end();
      } catch (e) {
        const st = statusOf(e);
        ctx.observe('grpc', 'scan', (performance.now() - started) / 1000, outcome(st));
        call.emit('error', { code: st.code, details: st.details, metadata: st.metadata });
      }
    })();
  };

  return {
    Get: unary('get', true, async (req: { key: string }) => {
      const value = await kv.get(Buffer.from(req.key));
      if (value === null) throw new RpcError(grpc.status.NOT_FOUND, `key not found: ${req.key.slice(0, 200)}`);
      let text: string;
      try {
        text = utf8.decode(value);
      } catch {
        // A string field cannot carry these bytes (Go clients reject invalid UTF-8): say so, never mangle them.
        throw new RpcError(grpc.status.FAILED_PRECONDITION, 'the value is not valid UTF-8; read it with Scan, whose fields are bytes');
      }
      return { value: text };
    }),
    Put: unary('put', false, async (req: { key: string; value: string }) => {
      await kv.put(Buffer.from(req.key), Buffer.from(req.value));
      return {};
    }),
    Delete: unary('delete', false, async (req: { key: string }) => {
      await kv.delete(Buffer.from(req.key));
      return {};
    }),
    Scan: scan,
    CompareAndSwap: unary('cas', false, async (req: { key: Uint8Array; expected?: Uint8Array | null; value?: Uint8Array | null }) => {
      const r = await kv.cas(bytes(req.key), optional(req.expected), optional(req.value));
      return r.current === null ? { ok: r.ok } : { ok: r.ok, current: r.current };
    }),
    Batch: unary('batch', false, async (req: { ops: { op?: string; put?: { key: Uint8Array; value: Uint8Array }; delete?: Uint8Array }[] }) => {
      const ops: BatchOp[] = req.ops.map((o, i) => {
        if (o.op === 'put' && o.put) return { op: 'put', key: bytes(o.put.key), value: bytes(o.put.value) };
        if (o.op === 'delete' && o.delete) return { op: 'delete', key: bytes(o.delete) };
        throw new RpcError(grpc.status.INVALID_ARGUMENT, `ops[${i}] is neither a put nor a delete`);
      });
      await kv.batch(ops);
      return {};
    }),
  };
}

/** The service definition with each request deserializer guarded by the strict check. */
export function loadKvService(pkg = protoLoader.loadSync(KV_PROTO_PATH, LOADER_OPTIONS)): grpc.ServiceDefinition {
  return guardedService(pkg, 'protos.KV');
}

/** `name`'s definition in `pkg`, each request checked strictly before protobufjs decodes it. */
function guardedService(pkg: protoLoader.PackageDefinition, name: string): grpc.ServiceDefinition {
  const service = pkg[name] as protoLoader.ServiceDefinition;
  const pkgName = name.slice(0, name.lastIndexOf('.'));
  const lookup = (typeName: string): MessageDescriptor | undefined =>
    (pkg[typeName.includes('.') ? typeName.replace(/^\./, '') : `${pkgName}.${typeName}`] as protoLoader.MessageTypeDefinition<object, object> | undefined)?.type as MessageDescriptor | undefined;
  const guarded: Record<string, protoLoader.MethodDefinition<object, object>> = {};
  for (const [name, method] of Object.entries(service)) {
    const desc = method.requestType.type as MessageDescriptor;
    guarded[name] = {
      ...method,
      requestDeserialize: (buf: Buffer): object => {
        try {
          checkMessage(buf, desc, lookup);
        } catch (e) {
          if (e instanceof ProtobufError) return { [MALFORMED]: { why: e.message, tooLarge: e.tooLarge } };
          throw e;
        }
        return method.requestDeserialize(buf) as object;
      },
    };
  }
  return guarded as unknown as grpc.ServiceDefinition;
}

/** Handlers that answer a request the strict check refused with INVALID_ARGUMENT, before they run. */
function refusingMalformed(handlers: grpc.UntypedServiceImplementation): grpc.UntypedServiceImplementation {
  return Object.fromEntries(
    Object.entries(handlers).map(([name, handler]) => [
      name,
      (call: grpc.ServerUnaryCall<unknown, unknown> & grpc.ServerWritableStream<unknown, unknown>, callback?: grpc.sendUnaryData<unknown>): void => {
        const err = refusal(call.request);
        if (err === undefined) return (handler as (c: typeof call, cb?: typeof callback) => void)(call, callback);
        if (callback) callback({ code: err.code, details: err.details, metadata: err.metadata });
        else call.emit('error', { code: err.code, details: err.details, metadata: err.metadata });
      },
    ]),
  );
}

/** Concurrent calls on one HTTP/2 connection (HTTP/2's own recommended minimum is 100). */
export const MAX_STREAMS_PER_CONNECTION = 100;

/** HTTP/2's client connection preface (RFC 9113 §3.4): the first bytes of every gRPC connection. */
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
/** A connection must have sent the whole preface this soon after it was accepted. */
export const PREFACE_TIMEOUT_MS = 10_000;
/** An HTTP/2 connection with no call for this long is closed (GOAWAY; clients reconnect when they need to). */
export const MAX_CONNECTION_IDLE_MS = 5 * 60_000;
/** The server pings every connection this often; one whose ping goes unanswered for KEEPALIVE_TIMEOUT_MS is dropped. */
export const KEEPALIVE_TIME_MS = 2 * 60_000;
export const KEEPALIVE_TIMEOUT_MS = 20_000;

export interface GrpcDoorOptions {
  listen: string;
  /** Open connections at most (default 10,000, as the other doors); more wait in the backlog. */
  maxConnections?: number;
  /** Default PREFACE_TIMEOUT_MS. */
  prefaceTimeoutMs?: number;
  /** Default MAX_CONNECTION_IDLE_MS. */
  maxConnectionIdleMs?: number;
  /** Default KEEPALIVE_TIME_MS. */
  keepaliveTimeMs?: number;
  /** Default KEEPALIVE_TIMEOUT_MS. */
  keepaliveTimeoutMs?: number;
}

/**
 * Hands `socket` to `inject` once its first bytes are HTTP/2's preface, which grpc-js would wait
 * for forever (one silent connection held a slot of the connection limit for good). A connection
 * whose bytes differ from the preface is closed at once, one that has not sent all of it within
 * `timeoutMs` then. The bytes read are put back (unshift): Node's HTTP/2 session reads what is
 * buffered on the socket before it reads from the socket itself.
 */
export function afterPreface(socket: net.Socket, timeoutMs: number, inject: (socket: net.Socket) => void): void {
  let got: Buffer = Buffer.alloc(0);
  const timer = setTimeout(() => socket.destroy(), timeoutMs);
  const done = (): void => {
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('error', ignore);
    socket.off('close', done);
  };
  const onData = (chunk: Buffer): void => {
    got = got.length === 0 ? chunk : Buffer.concat([got, chunk]);
    const n = Math.min(got.length, PREFACE.length);
    if (!got.subarray(0, n).equals(PREFACE.subarray(0, n))) {
      done();
      socket.destroy();
      return;
    }
    if (got.length < PREFACE.length) return;
    done();
    socket.pause();
    socket.unshift(got);
    inject(socket);
  };
  // Until the session owns the socket, a reset must not become an unhandled 'error'.
  const ignore = (): void => {};
  socket.on('error', ignore);
  socket.on('close', done);
  socket.on('data', onData);
}

export async function startGrpcDoor(ctx: DoorContext, opts: GrpcDoorOptions): Promise<Door> {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': DEFAULT_MAX_FRAME_BYTES,
    'grpc.max_send_message_length': DEFAULT_MAX_FRAME_BYTES,
    // Each stream may hold a scan page (up to ~2 MiB) for a client that does not read: without a
    // bound, one connection's thousand streams held 2 GB (found in review, 2026-12-07).
    'grpc.max_concurrent_streams': MAX_STREAMS_PER_CONNECTION,
    // Connections past the preface: one without calls is closed after a while (each holds a slot
    // of the connection limit), and one whose peer is gone while calls wait on it (a Scan held by
    // flow control) is found by an unanswered ping, not after TCP's retransmissions (~15 min).
    'grpc.max_connection_idle_ms': opts.maxConnectionIdleMs ?? MAX_CONNECTION_IDLE_MS,
    'grpc.keepalive_time_ms': opts.keepaliveTimeMs ?? KEEPALIVE_TIME_MS,
    'grpc.keepalive_timeout_ms': opts.keepaliveTimeoutMs ?? KEEPALIVE_TIMEOUT_MS,
  });
  // One package definition of every proto served, for the services and for reflection.
  const pkg = protoLoader.loadSync([KV_PROTO_PATH, HEALTH_PROTO_PATH], LOADER_OPTIONS);
  server.addService(loadKvService(pkg), kvHandlers(ctx, new KvOps(ctx.executor, ctx.limits)));
  const health = new HealthService({ ready: () => ctx.ready() });
  server.addService(guardedService(pkg, HEALTH_SERVICE), refusingMalformed(health.handlers));
  new ReflectionService(pkg).addToServer(server);
  // Connections come from a listener of our own, handed to grpc-js: grpc-js's own has no bound on
  // connections, and one that never sends HTTP/2's preface is held for good (no idle timeout
  // applies before it). A fuzz test held 20,000 such connections: 485 MB and the fd limit. So a
  // connection is handed over only once its preface is in (afterPreface).
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const prefaceMs = opts.prefaceTimeoutMs ?? PREFACE_TIMEOUT_MS;
  // Connections still before their preface: grpc-js does not know them, so close() ends them here
  // (one handed over after close() was served by the shut-down server and held the process).
  const early = new Set<net.Socket>();
  let closed = false;
  const listener = net.createServer((socket) => {
    early.add(socket);
    socket.once('close', () => early.delete(socket));
    afterPreface(socket, prefaceMs, (s) => {
      early.delete(s);
      if (closed) s.destroy();
      else injector.injectConnection(s);
    });
  });
  listener.maxConnections = opts.maxConnections ?? 10_000;
  const address = await listenAddress(listener, opts.listen, (e) => ctx.log.warn('grpc door: a connection could not be accepted', { error: e }));
  return {
    name: 'grpc',
    address,
    close: () =>
      new Promise<void>((resolve) => {
        closed = true;
        listener.close();
        for (const s of early) s.destroy();
        early.clear();
        health.close(); // health watchers hear NOT_SERVING and their streams end
        // Let calls in flight finish briefly, then cut the rest.
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 1000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}
