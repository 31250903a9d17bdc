// Typed key-value operations over the router, shared by the RESP, gRPC and HTTP doors: builds the
// native request (the router and the Raft log store requests in native encoding), checks what the
// encoding or the store cannot carry before it gets there, and turns error responses into KvError.
// Writes carry clientId 0 ("no session"): these doors do not retry a write on their own.
import { encodeRequest, type BatchOp, type Consistency, type KeyValue, type Request, type Response, type StatusInfo, type WireError } from '../wire/index.ts';
import type { DoorLimits, Executor } from './door-context.ts';

export class KvError extends Error {
  override readonly name = 'KvError';
  constructor(readonly error: WireError) {
    super(error.message);
  }

  get code(): WireError['code'] {
    return this.error.code;
  }
}

export function kvError(code: 'TOO_LARGE' | 'BAD_REQUEST' | 'UNAVAILABLE' | 'TIMEOUT', message: string): KvError {
  return new KvError({ code, message });
}

const NO_SESSION = { clientId: 0n, seq: 0 };

export class KvOps {
  constructor(
    private readonly executor: Executor,
    readonly limits: DoorLimits,
  ) {}

  /** Sends one request through the router; the answer may be an error response. */
  execute(req: Request): Promise<Response> {
    const frame = encodeRequest(0, req);
    return this.executor.execute(req, { type: frame[4]!, body: frame.subarray(9), hops: 0 });
  }

  async get(key: Uint8Array, consistency: Consistency = 'linearizable'): Promise<Uint8Array | null> {
    this.checkKey(key, false);
    if (key.length === 0) return null; // the store cannot hold the empty key, so it is never there
    const r = expect(await this.execute({ op: 'get', key, consistency }), 'value');
    return r.value;
  }

  async put(key: Uint8Array, value: Uint8Array): Promise<void> {
    this.checkKey(key, true);
    this.checkValue(value);
    expect(await this.execute({ op: 'put', key, value, ...NO_SESSION }), 'ok');
  }

  async delete(key: Uint8Array): Promise<void> {
    this.checkKey(key, true);
    expect(await this.execute({ op: 'delete', key, ...NO_SESSION }), 'ok');
  }

  /** Sets key to `value` if it holds `expected` (null: absent); value null deletes. */
  async cas(key: Uint8Array, expected: Uint8Array | null, value: Uint8Array | null): Promise<{ ok: boolean; current: Uint8Array | null }> {
    this.checkKey(key, true);
    if (expected) this.checkValue(expected);
    if (value) this.checkValue(value);
    const r = expect(await this.execute({ op: 'cas', key, expected, value, ...NO_SESSION }), 'cas');
    return { ok: r.ok, current: r.current };
  }

  /** Puts and deletes applied atomically (within a partition: the router splits the rest). */
  async batch(ops: BatchOp[]): Promise<void> {
    if (ops.length === 0) return;
    this.checkBatch(ops);
    expect(await this.execute({ op: 'batch', ops, ...NO_SESSION }), 'ok');
  }

  /** Throws the error batch() would for these ops, without sending anything. */
  checkBatch(ops: BatchOp[]): void {
    for (const o of ops) {
      this.checkKey(o.key, true);
      if (o.op === 'put') this.checkValue(o.value);
    }
  }

  /** One page of [start, end) in key order; `more` is where the next page starts. */
  async scan(start: Uint8Array, end: Uint8Array | null, limit: number, consistency: Consistency = 'linearizable'): Promise<{ items: KeyValue[]; more: Uint8Array | null }> {
    // Bounds longer than any storable key still order correctly, but the wire caps them at 64 KiB.
    if (start.length > 0xffff || (end && end.length > 0xffff)) throw kvError('TOO_LARGE', 'scan bound longer than 65535 bytes');
    const r = expect(await this.execute({ op: 'scan', start, end, limit: Math.max(0, Math.min(limit, 0xffff_ffff)), consistency }), 'scan');
    return { items: r.items, more: r.more };
  }

  /** Keys in the whole store (every shard group's, summed). */
  async count(consistency: Consistency = 'linearizable'): Promise<number> {
    return expect(await this.execute({ op: 'count', consistency }), 'count').count;
  }

  async status(): Promise<StatusInfo> {
    return expect(await this.execute({ op: 'status' }), 'status').info;
  }

  /** Throws TOO_LARGE for a key over the limit, BAD_REQUEST for the empty key in a write. */
  checkKey(key: Uint8Array, write: boolean): void {
    if (key.length > this.limits.maxKeyBytes) throw kvError('TOO_LARGE', `key of ${key.length} bytes exceeds the limit of ${this.limits.maxKeyBytes} bytes`);
    if (write && key.length === 0) throw kvError('BAD_REQUEST', 'the empty key cannot be stored');
  }

  /** Throws TOO_LARGE for a value over the limit (what a write of it would be refused for). */
  checkValue(value: Uint8Array): void {
    if (value.length > this.limits.maxValueBytes) throw kvError('TOO_LARGE', `value of ${value.length} bytes exceeds the limit of ${this.limits.maxValueBytes} bytes`);
  }
}

function expect<K extends Response['kind']>(r: Response, kind: K): Extract<Response, { kind: K }> {
  if (r.kind === kind) return r as Extract<Response, { kind: K }>;
  if (r.kind === 'error') throw new KvError(r.error);
  throw kvError('UNAVAILABLE', `unexpected ${r.kind} response`);
}
