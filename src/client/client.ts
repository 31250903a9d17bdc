// The TypeScript client: pooled pipelined connections, a leader cache for writes, round-robin reads
// (any replica serves linearizable reads), retries with backoff and jitter under one deadline, and
// exactly-once writes.
//
// Exactly-once: the server keeps, per client id, the last write's seq and result. A retry reuses
// its (clientId, seq), so it is answered from that record instead of applied again. To keep that
// correct with many writes in flight, every in-flight write runs in its own *lane*, a client id
// with at most one outstanding write; lanes are reused, so seqs per lane only grow.
import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { MAX_KEY_BYTES, isStaleWrite, type BatchOp, type Consistency, type KeyValue, type Request, type Response, type StatusInfo, type WireError } from '../wire/index.ts';
import { UnreachableError, callGroup, pause, timeForRetry, unknownOutcome } from '../cluster/group-call.ts';
import { Connection } from '../cluster/connection.ts';
import { Responsiveness, attemptMsFor } from '../cluster/responsiveness.ts';

export type Bytes = Uint8Array | string;

export interface ClientOptions {
  endpoints: string[];
  /** Overall deadline of one call (> 0), retries and a write's wait for a free slot (maxInFlightWrites) included. */
  timeoutMs?: number;
  /**
   * How long one attempt waits for an answer before the call tries another replica (default a third
   * of timeoutMs, at least 500 ms). A replica cut off by a network partition answers nothing at all,
   * so no single attempt may use up the whole deadline. A retried write keeps its (clientId, seq).
   */
  attemptTimeoutMs?: number;
  /** Max writes in flight at once (lanes, at least 1); more wait their turn, within their timeoutMs. */
  maxInFlightWrites?: number;
  /** Connections per endpoint. */
  poolSize?: number;
}

/**
 * What a KvsError's `code` can be: a server's error code (docs/protocol.md), UNREACHABLE or CLOSED.
 * What a failed write's code says about whether it was applied:
 * - TIMEOUT: unknown. It may or may not have been applied: an attempt may have reached a replica
 *   (sent, no answer; or the server's own TIMEOUT) and no definitive answer came before the deadline.
 * - UNREACHABLE: not applied. No attempt could have reached any replica (refused, no connection).
 *   For a read: no replica answered.
 * - NOT_LEADER, WRONG_GROUP, UNAVAILABLE, TOO_LARGE, BAD_REQUEST: not applied. The clients never
 *   report NOT_LEADER (or UNAVAILABLE, UNREACHABLE) for a write an earlier attempt may have got through.
 * - CLOSED: the client was closed (close()). A call made after it was never sent; a write still
 *   pending at close() may or may not have been applied.
 */
export type KvsErrorCode = WireError['code'] | 'UNREACHABLE' | 'CLOSED';

export class KvsError extends Error {
  override readonly name = 'KvsError';
  constructor(
    readonly code: KvsErrorCode,
    message: string,
  ) {
    super(message);
  }
}

interface Lane {
  clientId: bigint;
  seq: number;
}

const enc = new TextEncoder();

/**
 * The controller close() aborts. Every pending call's pause or wait listens to its signal while it
 * lasts, so the listener limit (and Node's "possible EventTarget memory leak" warning) is lifted.
 */
function closeController(onAbort: () => void): AbortController {
  const c = new AbortController();
  setMaxListeners(0, c.signal);
  c.signal.addEventListener('abort', onAbort, { once: true });
  return c;
}

/** A connection's failure as the clients' error: it may have been sent (no answer in time) or not. */
function asKvsError(e: unknown): never {
  if (e instanceof UnreachableError) throw new KvsError(e.sent ? 'TIMEOUT' : 'UNREACHABLE', e.message);
  throw e;
}

/** What every call pending at close() and every call after it rejects with. */
function clientClosed(): KvsError {
  return new KvsError('CLOSED', 'the client was closed');
}


/** A key or value as bytes: strings as UTF-8, any other kind refused with a TypeError naming `name` (argument checks at the end). */
const toBytes = (b: Bytes, name = 'value'): Uint8Array => bytesArg(b, name);

export class KvsClient {
  /** Replicas to send to (any of them serves any key); subclasses may add to it. */
  protected readonly endpoints: string[];
  protected readonly timeoutMs: number;
  /** Replicas that recently left an attempt unanswered, and how long one attempt may wait. */
  protected readonly responsiveness: Responsiveness;
  private readonly pools = new Map<string, Connection[]>();
  private readonly poolSize: number;
  private leaderAddr: string | undefined;
  private rr = 0;
  private freeLanes: Lane[] = [];
  private laneWaiters: { resolve: (l: Lane) => void; reject: (e: KvsError) => void; timer: NodeJS.Timeout }[] = [];
  private lanesCreated = 0;
  private readonly maxLanes: number;
  private readonly laneBase = randomBytes(8).readBigUInt64BE(0) & ~0xffffn;
  /** Calls waiting in untilClosed(): rejected by close(). A set, not one abort listener per call. */
  private readonly closeWaiters = new Set<() => void>();
  /** Aborted by close(): pending calls reject at once, their retries and pauses stop. */
  private readonly closing = closeController(() => {
    for (const reject of this.closeWaiters) reject();
    this.closeWaiters.clear();
  });

  constructor(opts: ClientOptions) {
    checkEndpointsArg(opts, 'endpoints');
    // A subclass (ShardedClient) may start with none and learn them from the cluster configuration.
    if (opts.endpoints.length === 0 && new.target === KvsClient) throw new Error('at least one endpoint is needed');
    checkOptions(opts);
    this.endpoints = [...opts.endpoints];
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.responsiveness = new Responsiveness(opts.attemptTimeoutMs ?? attemptMsFor(this.timeoutMs));
    this.maxLanes = Math.min(opts.maxInFlightWrites ?? 1024, 0xffff);
    this.poolSize = opts.poolSize ?? 1;
  }

  async get(key: Bytes, opts: { consistency?: Consistency } = {}): Promise<Uint8Array | null> {
    const r = await this.call({ op: 'get', key: keyArg(key), consistency: consistencyArg(opts) }, 'read');
    if (r.kind !== 'value') throw unexpected(r);
    return r.value;
  }

  async put(key: Bytes, value: Bytes): Promise<void> {
    const k = keyArg(key);
    const v = toBytes(value);
    await this.write((id) => ({ op: 'put', key: k, value: v, ...id }));
  }

  async delete(key: Bytes): Promise<void> {
    const k = keyArg(key);
    await this.write((id) => ({ op: 'delete', key: k, ...id }));
  }

  /** Sets key to value if it currently holds `expected` (null: absent); value null deletes. */
  async cas(key: Bytes, expected: Bytes | null, value: Bytes | null): Promise<{ ok: boolean; current: Uint8Array | null }> {
    const args = {
      key: keyArg(key),
      expected: expected === null ? null : toBytes(expected, 'expected (null: absent)'),
      value: value === null ? null : toBytes(value, 'value (null: delete)'),
    };
    const r = await this.write((id) => ({ op: 'cas', ...args, ...id }));
    if (r.kind !== 'cas') throw unexpected(r);
    return { ok: r.ok, current: r.current };
  }

  /**
   * Puts and deletes applied together (atomically within a partition). Every op is checked before
   * anything is sent: an op other than 'put' (with a value) or 'delete' is refused whole with
   * KvsError BAD_REQUEST. An empty batch does nothing and resolves.
   */
  async batch(ops: ({ op: 'put'; key: Bytes; value: Bytes } | { op: 'delete'; key: Bytes })[]): Promise<void> {
    const wireOps = batchOpsArg(ops);
    if (wireOps.length === 0) return;
    await this.write((id) => ({ op: 'batch', ops: wireOps, ...id }));
  }

  /** One page of keys in [start, end), in key order; `more` is where the next page starts. */
  async scan(start: Bytes, end: Bytes | null, opts: { limit?: number; consistency?: Consistency } = {}): Promise<{ items: KeyValue[]; more: Uint8Array | null }> {
    const r = await this.call(
      { op: 'scan', start: keyArg(start, 'scan start'), end: end === null ? null : keyArg(end, 'scan end'), limit: limitArg(opts, 'limit', 0), consistency: consistencyArg(opts) },
      'read',
    );
    if (r.kind !== 'scan') throw unexpected(r);
    return { items: r.items, more: r.more };
  }

  /** How many keys the store holds (on a sharded cluster every group's, summed). */
  async count(opts: { consistency?: Consistency } = {}): Promise<number> {
    const r = await this.call({ op: 'count', consistency: consistencyArg(opts) }, 'read');
    if (r.kind !== 'count') throw unexpected(r);
    return r.count;
  }

  /** Every key in [start, end), page by page. */
  async *scanAll(start: Bytes, end: Bytes | null, opts: { pageSize?: number; consistency?: Consistency } = {}): AsyncGenerator<KeyValue> {
    let from: Uint8Array | null = toBytes(start, 'scan start');
    const limit = limitArg(opts, 'pageSize', 1000);
    const consistency = consistencyArg(opts);
    while (from !== null) {
      const page = await this.scan(from, end, { limit, consistency });
      yield* page.items;
      from = page.more;
    }
  }

  /**
   * The status of `endpoint`'s replica (or of any replica). Rejects with KvsError: UNREACHABLE
   * when that replica could not be reached, TIMEOUT when it did not answer in time.
   */
  async status(endpoint?: string): Promise<StatusInfo> {
    let r: Response;
    if (endpoint) {
      const ask = (req: Request): Promise<Response> => this.untilClosed(this.connection(endpoint).request(req, this.timeoutMs)).catch(asKvsError);
      // With the flags byte (StatusInfo.blank); a replica of an earlier version refuses a STATUS
      // with a body (BAD_REQUEST) and is asked the old way.
      r = await ask({ op: 'status', flags: true });
      if (r.kind === 'error' && r.error.code === 'BAD_REQUEST') r = await ask({ op: 'status' });
    } else {
      r = await this.call({ op: 'status' }, 'read');
    }
    if (r.kind === 'error') throw new KvsError(r.error.code, r.error.message);
    if (r.kind !== 'status') throw unexpected(r);
    return r.info;
  }

  /**
   * Closes every connection. Calls still pending reject at once with KvsError CLOSED ("the client
   * was closed"; a pending write may or may not have been applied), and so does every call after,
   * unsent; no socket or timer of the client is left.
   */
  close(): void {
    if (!this.closing.signal.aborted) this.closing.abort(clientClosed());
    for (const pool of this.pools.values()) for (const c of pool) c.close();
    this.pools.clear();
    for (const w of this.laneWaiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(clientClosed());
    }
  }

  // ---- internals --------------------------------------------------------------------------------

  protected get isClosed(): boolean {
    return this.closing.signal.aborted;
  }

  /** Aborted when the client is closed (for pauses and waits that must not outlive it). */
  protected get closeSignal(): AbortSignal {
    return this.closing.signal;
  }

  /** p, or the client-closed error as soon as close() is called (p is left to settle, unobserved). */
  protected untilClosed<T>(p: Promise<T>): Promise<T> {
    const signal = this.closing.signal;
    if (signal.aborted) {
      p.catch(() => {});
      return Promise.reject(clientClosed());
    }
    return new Promise<T>((resolve, reject) => {
      const onClose = (): void => reject(clientClosed());
      this.closeWaiters.add(onClose);
      p.then(
        (v) => {
          this.closeWaiters.delete(onClose);
          resolve(v);
        },
        (e: unknown) => {
          this.closeWaiters.delete(onClose);
          reject(e instanceof Error ? e : new Error(String(e)));
        },
      );
    });
  }

  private async write(make: (id: { clientId: bigint; seq: number }) => Request): Promise<Response> {
    if (this.isClosed) throw clientClosed();
    // One deadline from the call on: the wait for a lane counts against timeoutMs too.
    const deadline = Date.now() + this.timeoutMs;
    const lane = await this.acquireLane(deadline);
    if (Date.now() >= deadline) {
      // Handed a lane at (or after) the deadline: nothing is left of it to send in.
      this.releaseLane(lane);
      throw this.noLane();
    }
    lane.seq++;
    try {
      return await this.call(make({ clientId: lane.clientId, seq: lane.seq }), 'write', deadline);
    } finally {
      this.releaseLane(lane);
    }
  }

  /** One call: routed (route()), and rejected at once with the client-closed error when close() is called. */
  protected call(req: Request, kind: 'read' | 'write', deadline = Date.now() + this.timeoutMs): Promise<Response> {
    if (this.isClosed) return Promise.reject(clientClosed());
    return this.untilClosed(this.route(req, kind, deadline));
  }

  /** Sends with retries until an answer that is not worth retrying, or the deadline (src/cluster/group-call.ts). */
  protected async route(req: Request, kind: 'read' | 'write', deadline: number): Promise<Response> {
    if (this.endpoints.length === 0) throw new KvsError('UNREACHABLE', 'no endpoint known');
    /** Why this write may have applied already (an attempt that may have arrived, unanswered). */
    let doubt: string | undefined;
    for (let round = 1; ; round++) {
      const out = await callGroup({
        replicas: this.rotation(),
        leader: this.leaderAddr,
        kind,
        // Every write of this client carries a session (its lane), so a second copy never applies twice.
        resendSafe: kind === 'read' || !('clientId' in req) || req.clientId !== 0n,
        deadline,
        pacing: this.responsiveness,
        send: (addr, waitMs) => this.connection(addr).request(req, waitMs),
        onLeader: (addr) => {
          this.leaderAddr = addr;
        },
        // Any replica routes any key: a hint may name a replica we were not given (another group's).
        followAnyHint: true,
        signal: this.closing.signal,
      });
      if (out.t === 'unknown') throw new KvsError('TIMEOUT', out.message);
      if (kind === 'write') doubt = out.doubt ?? doubt;
      // A replica's routing ran out of time during a hand-off (WRONG_GROUP): transient, while ours lasts.
      if (out.t === 'answer' && out.res.kind === 'error' && out.res.error.code === 'WRONG_GROUP' && Date.now() < deadline) {
        await pause(round, deadline, this.closing.signal);
        if (timeForRetry(deadline)) continue;
      }
      // "Not applied" answers do not hold after an attempt that may have arrived; nor does a stale
      // refusal of a resend in a later round (callGroup sees only its own round's doubt).
      if (doubt !== undefined && (out.t === 'unreachable' || (out.res.kind === 'error' && (NOT_APPLIED.has(out.res.error.code) || isStaleWrite(out.res))))) {
        // A stale refusal ends the call before its deadline: say so, not "no answer before the deadline".
        const why = out.t === 'answer' && isStaleWrite(out.res) ? 'a later write of this session was applied first' : 'no answer before the deadline';
        throw new KvsError('TIMEOUT', unknownOutcome(`${why}; ${doubt}`));
      }
      if (out.t === 'unreachable') throw new KvsError('UNREACHABLE', out.message);
      if (out.res.kind === 'error') throw new KvsError(out.res.error.code, out.res.error.message);
      return out.res;
    }
  }

  /** The endpoints starting at the next one in turn, so calls spread over the replicas. */
  private rotation(): string[] {
    this.rr = (this.rr + 1) % this.endpoints.length;
    return [...this.endpoints.slice(this.rr), ...this.endpoints.slice(0, this.rr)];
  }

  /** The next replica round-robin, passing over those that recently left an attempt unanswered. */
  protected nextEndpoint(): string {
    const now = Date.now();
    for (let i = 0; i < this.endpoints.length; i++) {
      this.rr = (this.rr + 1) % this.endpoints.length;
      const addr = this.endpoints[this.rr]!;
      if (!this.responsiveness.isQuiet(addr, now)) return addr;
    }
    this.rr = (this.rr + 1) % this.endpoints.length;
    return this.endpoints[this.rr]!; // every one is quiet: keep trying them in turn
  }

  protected connection(addr: string): Connection {
    if (this.isClosed) throw clientClosed(); // never a new connection after close()
    let pool = this.pools.get(addr);
    if (!pool) {
      pool = Array.from({ length: this.poolSize }, () => new Connection(addr));
      this.pools.set(addr, pool);
    }
    // The least busy connection of the pool.
    let best = pool[0]!;
    for (const c of pool) if (c.inFlight < best.inFlight) best = c;
    return best;
  }

  /** A free lane, or one freed before the deadline (else UNAVAILABLE: the write was never sent). */
  private acquireLane(deadline: number): Promise<Lane> {
    const free = this.freeLanes.pop();
    if (free) return Promise.resolve(free);
    if (this.lanesCreated < this.maxLanes) {
      this.lanesCreated++;
      return Promise.resolve({ clientId: this.laneBase | BigInt(this.lanesCreated), seq: 0 });
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: (l: Lane): void => {
          clearTimeout(waiter.timer);
          resolve(l);
        },
        reject,
        timer: setTimeout(() => {
          this.laneWaiters.splice(this.laneWaiters.indexOf(waiter), 1);
          reject(this.noLane());
        }, Math.max(0, deadline - Date.now())),
      };
      this.laneWaiters.push(waiter);
    });
  }

  private noLane(): KvsError {
    return new KvsError('UNAVAILABLE', `no write slot freed within ${this.timeoutMs} ms (maxInFlightWrites ${this.maxLanes} all busy): the write was not sent`);
  }

  private releaseLane(lane: Lane): void {
    const waiter = this.laneWaiters.shift();
    if (waiter) waiter.resolve(lane);
    else this.freeLanes.push(lane);
  }
}

/** Refuses options a client cannot work with (a write slot count of 0 would make every write wait forever). */
/** Answers that say the request was not applied (the client may send it again). */
const NOT_APPLIED: ReadonlySet<string> = new Set(['NOT_LEADER', 'UNAVAILABLE', 'WRONG_GROUP']);

/** The longest delay setTimeout takes as it is. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

function checkOptions(opts: ClientOptions): void {
  const positive = (name: string, v: number | undefined, integer: boolean, max = Infinity): void => {
    if (v === undefined) return;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v)) || v > max) {
      throw new RangeError(`${name} must be ${integer ? 'an integer' : 'a finite number'} > 0${max < Infinity ? ` and at most ${max}` : ''} (got ${String(v)})`);
    }
  };
  // Node's timers hold at most 2^31 - 1 ms (about 24.8 days): a longer one fires at once.
  positive('timeoutMs', opts.timeoutMs, false, MAX_TIMER_MS);
  positive('attemptTimeoutMs', opts.attemptTimeoutMs, false, MAX_TIMER_MS);
  positive('maxInFlightWrites', opts.maxInFlightWrites, true);
  positive('poolSize', opts.poolSize, true);
}

function unexpected(r: Response): KvsError {
  if (r.kind === 'error') return new KvsError(r.error.code, r.error.message);
  return new KvsError('BAD_REQUEST', `unexpected response ${r.kind}`);
}

/** Exponential backoff with full jitter, never past the deadline (one rule for every caller). */
export { pause as backoff } from '../cluster/group-call.ts';

// ---- arguments ----------------------------------------------------------------------------------
// Plain-JavaScript callers get no type checks: whatever the methods cannot send as the caller meant
// is refused here, before anything is sent.

/** A batch's ops as wire ops; throws KvsError BAD_REQUEST on the first op that is not a put (with a value) or a delete. */
function batchOpsArg(ops: unknown): BatchOp[] {
  if (!Array.isArray(ops)) throw new TypeError(`batch ops must be an array, got ${typeName(ops)}`);
  return ops.map((o: unknown, i): BatchOp => {
    if (typeof o !== 'object' || o === null) throw new KvsError('BAD_REQUEST', `batch op ${i} must be an object {op, key, value}, got ${typeName(o)}`);
    const { op, key, value } = o as { op?: unknown; key?: unknown; value?: unknown };
    if (op === 'put') {
      if (value === undefined || value === null) throw new KvsError('BAD_REQUEST', `batch op ${i} is a put without a value`);
      return { op: 'put', key: batchKey(key, i), value: toBytes(value as Bytes, `batch op ${i}: value`) };
    }
    if (op === 'delete') return { op: 'delete', key: batchKey(key, i) };
    throw new KvsError('BAD_REQUEST', `batch op ${i} has op ${typeName(op)}: it must be 'put' or 'delete'`);
  });
}

/**
 * A batch op's key. A batch may be split per partition (by ShardedClient, or by the replica that
 * receives it), and parts that pass apply: a key that no server can store refuses the whole batch
 * here. Values are limited by each server's configuration, so they are left to the servers.
 */
function batchKey(key: unknown, i: number): Uint8Array {
  const b = keyArg(key as Bytes, `batch op ${i}: key`);
  if (b.length === 0) throw new KvsError('BAD_REQUEST', `batch op ${i} has the empty key, which cannot be written`);
  return b;
}

/**
 * A key (or scan bound) as bytes. One longer than any server stores (MAX_KEY_BYTES) is refused here
 * with TOO_LARGE, as a server would answer it; past 65,535 bytes the frame could not even carry it.
 */
function keyArg(key: Bytes, name = 'key'): Uint8Array {
  const b = toBytes(key, name);
  if (b.length > MAX_KEY_BYTES) throw new KvsError('TOO_LARGE', `${name} of ${b.length} bytes exceeds the limit of ${MAX_KEY_BYTES} bytes`);
  return b;
}

/**
 * Bytes from a string (UTF-8), a Uint8Array or Buffer (as it is), or any other ArrayBufferView (a
 * DataView, a Uint16Array, ...: its bytes, not its element values). Anything else is a TypeError
 * naming the argument: an ArrayBuffer is not taken (wrap it in a Uint8Array), nor is a number.
 */
function bytesArg(v: unknown, name: string): Uint8Array {
  if (typeof v === 'string') return enc.encode(v);
  if (v instanceof Uint8Array) return v;
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  throw new TypeError(`${name} must be a string or a Uint8Array, got ${typeName(v)}`);
}

/** A read's consistency: 'linearizable' (the default) or 'stale'; anything else is BAD_REQUEST, never a silent default. */
function consistencyArg(opts: unknown): Consistency {
  const c = (opts as { consistency?: unknown } | null | undefined)?.consistency;
  if (c === undefined) return 'linearizable';
  if (c === 'linearizable' || c === 'stale') return c;
  throw new KvsError('BAD_REQUEST', `consistency must be 'linearizable' or 'stale', got ${typeName(c)}`);
}

/** A scan's page size: a whole number of keys (0: the server's default), at most a u32. */
function limitArg(opts: unknown, name: 'limit' | 'pageSize', fallback: number): number {
  const n = (opts as Record<string, unknown> | null | undefined)?.[name];
  if (n === undefined) return fallback;
  if (typeof n !== 'number') throw new TypeError(`${name} must be a number, got ${typeName(n)}`);
  if (!Number.isInteger(n) || n < 0 || n > 0xffff_ffff) throw new KvsError('BAD_REQUEST', `${name} must be a whole number from 0 to ${0xffff_ffff}, got ${n}`);
  return n;
}

/** The options object and its list of addresses (`endpoints`, or `placement` for ShardedClient): "host:port" strings. */
export function checkEndpointsArg(opts: unknown, name: 'endpoints' | 'placement'): void {
  if (typeof opts !== 'object' || opts === null) throw new TypeError(`the client's options must be an object, got ${typeName(opts)}`);
  const list = (opts as Record<string, unknown>)[name];
  if (!Array.isArray(list) || !list.every((a) => typeof a === 'string')) {
    throw new TypeError(`${name} must be an array of "host:port" strings, got ${Array.isArray(list) ? `[${list.map(typeName).join(', ')}]` : typeName(list)}`);
  }
}

/** How an argument of the wrong kind is named in an error. */
function typeName(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  if (typeof v === 'object' || typeof v === 'function') return (v as object).constructor?.name ?? typeof v;
  return `${typeof v} ${String(v)}`;
}
