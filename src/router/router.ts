// The local group's end of the request path (request-path.ts composes the whole path): reads are
// served here (linearizable through a read barrier, or stale), writes are proposed here when this
// replica leads, else relayed to the leader. No door re-implements routing, consistency or retries.
import { DroppedError, NotLeaderError, OutcomeUnknownError, StoppedError, type Replica } from '../replica/replica.ts';
import { encodeWrite } from '../replica/commands.ts';
import { LinkError } from '../transport/carrier.ts';
import { MAX_REQUEST_BODY_BYTES, SCAN_PAGE_BYTES, batchTooLarge, decodeResponse, requestTooLarge, type KeyValue, type Request, type Response, type WireError } from '../wire/index.ts';

export interface LocalReader {
  get(key: Uint8Array): Uint8Array | null;
  /** Stops before `maxBytes` of keys and values, after at least one pair (ReplicaStore.scan). */
  scan(start: Uint8Array, end: Uint8Array | null, limit: number, maxBytes?: number): { items: KeyValue[]; more: Uint8Array | null };
  /** Keys in the state machine. */
  count(): number;
}

export interface Forwarder {
  /** Relays a client request to replica `to`; resolves with its raw response frame. */
  forward(to: number, type: number, body: Uint8Array, hops: number, timeoutMs: number): Promise<{ type: number; body: Uint8Array }>;
  /** host:port of a replica's native door ('' if unknown). */
  addressOf(id: number): string;
}

export interface RouterOptions {
  replica: Replica;
  reader: LocalReader;
  forwarder: Forwarder;
  /** Throws a TooLargeError-like error (with .message) when a key or value is over the limits. */
  checkSizes: (key: Uint8Array, value: Uint8Array | null) => void;
  requestTimeoutMs: number;
  /** Sharded cluster: whether this group serves a key (after the read barrier), and the answer when not. */
  ownership?: {
    serves: (key: Uint8Array) => boolean;
    wrongGroup: () => Response;
    holdsUnserved: () => boolean;
    handingOver: () => boolean;
    /** The ownership reads go by now: a new object whenever it changes. */
    current: () => unknown;
  };
  defaultScanLimit?: number;
  maxScanLimit?: number;
  status: () => Response;
  /**
   * After this long without a known leader the replica is likely cut off from its group (an
   * election is over well within it) while the rest serves: requests then get NOT_LEADER at once,
   * so clients try another replica, instead of each waiting out its deadline here. Unset: wait.
   */
  strandedAfterMs?: number;
}

export interface RawRequest {
  type: number;
  body: Uint8Array;
  /** How many replicas relayed it already (a relayed request is never relayed again). */
  hops: number;
}

const RETRY_PAUSE_MS = 25;
/** Keys per page when counting page by page. */
const COUNT_PAGE = 5000;

export class Router {
  readonly stats = { forwarded: 0, proposed: 0, reads: 0, staleReads: 0 };

  constructor(private readonly o: RouterOptions) {}

  /** When a request that starts now must be answered by. */
  deadline(): number {
    return Date.now() + this.o.requestTimeoutMs;
  }

  /** The request served by this group (an unsharded replica's whole request path). */
  execute(req: Request, raw: RawRequest): Promise<Response> {
    return this.local(req, raw, this.deadline());
  }

  /** The request served by this replica's own group. */
  async local(req: Request, raw: RawRequest, deadline: number): Promise<Response> {
    const own = this.o.ownership;
    try {
      switch (req.op) {
        case 'ping':
          return { kind: 'ok' };
        case 'status': {
          const res = this.o.status();
          if (req.flags || res.kind !== 'status') return res;
          // A client that did not ask for the flags byte may be one that rejects it.
          const { blank: _, ...info } = res.info;
          return { kind: 'status', info };
        }
        case 'get':
          // No write can store the empty key, so it reads as absent, as on every door.
          if (req.key.length === 0) return { kind: 'value', value: null };
          this.checkKey(req.key);
          await this.consistentRead(req.consistency, deadline);
          if (own && !own.serves(req.key)) return own.wrongGroup();
          return { kind: 'value', value: this.o.reader.get(req.key) };
        case 'count':
          await this.consistentRead(req.consistency, deadline);
          if (own?.handingOver()) return handingOver();
          {
            const at = own?.current();
            const count = await this.countServed();
            // Counted page by page, yielding between pages: a hand-over step made visible meanwhile
            // (an activation, say) changed which keys count here, while the other groups answered
            // before it. The pages then add up to no single point: counted again from the start.
            if (own && own.current() !== at) return handingOver();
            return { kind: 'count', count };
          }
        case 'scan': {
          // Refused at once: a bound longer than any key can never be served (LMDB cannot take it).
          const refusal = this.scanRefusal(req);
          if (refusal) return { kind: 'error', error: refusal };
          await this.consistentRead(req.consistency, deadline);
          if (own?.handingOver()) return handingOver();
          const max = this.o.maxScanLimit ?? 10_000;
          const limit = req.limit === 0 ? (this.o.defaultScanLimit ?? 1000) : Math.min(req.limit, max);
          return { kind: 'scan', ...this.scanServed(req.start, req.end, limit) };
        }
        case 'put':
        case 'delete':
        case 'cas':
        case 'batch': {
          this.checkWrite(req);
          const refusal = sizeRefusal(req, raw);
          if (refusal) return { kind: 'error', error: refusal };
          return await this.write(raw, deadline);
        }
      }
    } catch (e) {
      const error = this.toWireError(e);
      // UNAVAILABLE says "not applied" (the RESP door answers -TRYAGAIN): an error of a write that
      // this router does not know (the replica stopped with the proposal pending, say) is not
      // that, the entry may have committed.
      if (isWrite(req) && error.code === 'UNAVAILABLE' && !(e instanceof DroppedError) && !(e instanceof StoppedError) && !(e instanceof LinkError)) {
        return { kind: 'error', error: { code: 'TIMEOUT', message: `${error.message} (it may still apply)` } };
      }
      return { kind: 'error', error };
    }
  }

  /**
   * A page of the keys this group serves (it may also hold partitions it is handing off or
   * receiving), at most SCAN_PAGE_BYTES of keys and values after the first pair.
   */
  private scanServed(start: Uint8Array, end: Uint8Array | null, limit: number): { items: KeyValue[]; more: Uint8Array | null } {
    const own = this.o.ownership;
    if (!own) return this.o.reader.scan(start, end, limit, SCAN_PAGE_BYTES);
    const items: KeyValue[] = [];
    let bytes = 0;
    let from: Uint8Array | null = start;
    while (from !== null && items.length < limit) {
      const page = this.o.reader.scan(from, end, limit - items.length, Math.max(1, SCAN_PAGE_BYTES - bytes));
      for (const kv of page.items) {
        if (!own.serves(kv.key)) continue;
        bytes += kv.key.length + kv.value.length;
        if (items.length > 0 && bytes > SCAN_PAGE_BYTES) return { items, more: kv.key };
        items.push(kv);
      }
      from = page.more;
    }
    return { items, more: from };
  }

  /**
   * How many keys this group serves: the store's entry count, unless partitions are moving in or
   * out (then their keys are in the store too, and the served ones are counted page by page).
   */
  private async countServed(): Promise<number> {
    const own = this.o.ownership;
    if (!own?.holdsUnserved()) return this.o.reader.count();
    let n = 0;
    for (let from: Uint8Array | null = new Uint8Array(0); from !== null; ) {
      const page = this.o.reader.scan(from, null, COUNT_PAGE);
      for (const kv of page.items) if (own.serves(kv.key)) n++;
      from = page.more;
      if (from !== null) await new Promise((r) => setImmediate(r)); // other requests go on meanwhile
    }
    return n;
  }

  /**
   * Why a request can never succeed, checked before anything runs or is split into parts: a key or
   * value over the limits (TOO_LARGE), the empty key in a write (BAD_REQUEST), a scan bound longer
   * than a key may be (TOO_LARGE). Undefined: none. The shard routing asks before it splits a batch,
   * so one bad op refuses the whole batch, and before it fans a scan out.
   */
  refusal(req: Request): WireError | undefined {
    if (req.op === 'scan') return this.scanRefusal(req);
    try {
      if (req.op === 'put' || req.op === 'delete' || req.op === 'cas' || req.op === 'batch') this.checkWrite(req);
      return undefined;
    } catch (e) {
      return this.toWireError(e);
    }
  }

  /** A scan bound over the key limit (the empty one starts at the beginning, or ends nowhere). */
  private scanRefusal(req: Extract<Request, { op: 'scan' }>): WireError | undefined {
    for (const [name, bound] of [['scan start', req.start], ['scan end', req.end]] as const) {
      if (bound === null || bound.length === 0) continue;
      try {
        this.o.checkSizes(bound, null);
      } catch (e) {
        const err = this.toWireError(e);
        return { ...err, message: `${name}: ${err.message}` } as WireError;
      }
    }
    return undefined;
  }

  /** Keys are validated before anything runs: a bad key is the client's error, never retried. */
  private checkKey(key: Uint8Array): void {
    if (key.length === 0) throw new BadKeyError('the empty key is not allowed');
    this.o.checkSizes(key, null);
  }

  private checkWrite(req: Request): void {
    if (req.op === 'batch') for (const op of req.ops) this.checkKey(op.key);
    else if ('key' in req) this.checkKey(req.key);
    switch (req.op) {
      case 'put':
        this.o.checkSizes(req.key, req.value);
        break;
      case 'delete':
        this.o.checkSizes(req.key, null);
        break;
      case 'cas':
        this.o.checkSizes(req.key, req.value);
        if (req.expected) this.o.checkSizes(req.key, req.expected);
        break;
      case 'batch':
        for (const op of req.ops) this.o.checkSizes(op.key, op.op === 'put' ? op.value : null);
        break;
      default:
        break;
    }
  }

  private async consistentRead(consistency: 'linearizable' | 'stale', deadline: number): Promise<void> {
    if (consistency === 'stale') {
      this.stats.staleReads++;
      await this.o.replica.visibleBarrier(); // writes answered here are visible (within ~1 commit)
      return;
    }
    this.stats.reads++;
    for (;;) {
      try {
        await withDeadline(this.o.replica.readBarrier(), deadline);
        return;
      } catch (e) {
        if (!(e instanceof NotLeaderError) || this.stranded() || Date.now() + RETRY_PAUSE_MS >= deadline) throw e;
        await sleep(RETRY_PAUSE_MS); // an election is under way: wait for the next leader
      }
    }
  }

  private async write(raw: RawRequest, deadline: number): Promise<Response> {
    for (;;) {
      const replica = this.o.replica;
      try {
        if (replica.isLeader) {
          this.stats.proposed++;
          return await withDeadline(replica.propose(encodeWrite(Date.now(), raw.type, raw.body)), deadline);
        }
        const leader = replica.leader;
        if (leader !== 0 && raw.hops === 0) {
          this.stats.forwarded++;
          const f = await this.o.forwarder.forward(leader, raw.type, raw.body, raw.hops + 1, deadline - Date.now());
          const res = decodeResponse(f.type, f.body);
          // The leader we relayed to lost leadership meanwhile: try again through the new one.
          if (res.kind === 'error' && res.error.code === 'NOT_LEADER' && Date.now() + RETRY_PAUSE_MS < deadline) {
            await sleep(RETRY_PAUSE_MS);
            continue;
          }
          return res;
        }
        // Relayed here (the relay retries elsewhere), no leader known before the deadline, or for
        // so long that this replica is likely cut off.
        if (raw.hops > 0 || this.stranded() || Date.now() + RETRY_PAUSE_MS >= deadline) throw new NotLeaderError(leader);
      } catch (e) {
        // Not appended (not leader) or replaced by another leader's entry: it did not apply, so
        // trying again is safe; anything else (timeout) is ambiguous and goes back to the client.
        const retriable = e instanceof NotLeaderError || e instanceof DroppedError || (e instanceof LinkError && !e.sent);
        if (!retriable || raw.hops > 0 || (e instanceof NotLeaderError && this.stranded()) || Date.now() + RETRY_PAUSE_MS >= deadline) throw e;
      }
      await sleep(RETRY_PAUSE_MS);
    }
  }

  /** No leader known for longer than strandedAfterMs. */
  private stranded(): boolean {
    const after = this.o.strandedAfterMs;
    return after !== undefined && this.o.replica.leader === 0 && this.o.replica.leaderlessForMs > after;
  }

  private toWireError(e: unknown): WireError {
    if (e instanceof NotLeaderError) {
      const leader = e.leader;
      return { code: 'NOT_LEADER', message: e.message, leaderId: leader, leaderAddr: leader ? this.o.forwarder.addressOf(leader) : '' };
    }
    if (e instanceof DeadlineError) return { code: 'TIMEOUT', message: 'request timed out (it may still apply)' };
    if (e instanceof DroppedError) return { code: 'UNAVAILABLE', message: e.message };
    // Proposed after the replica stopped: it never entered the log.
    if (e instanceof StoppedError) return { code: 'UNAVAILABLE', message: e.message };
    // Overtaken by a snapshot here: it may have applied, as after a timeout.
    if (e instanceof OutcomeUnknownError) return { code: 'TIMEOUT', message: `${e.message} (it may still apply)` };
    const name = (e as Error)?.name;
    if (name === 'TooLargeError') return { code: 'TOO_LARGE', message: (e as Error).message };
    if (e instanceof BadKeyError || name === 'InvalidKeyError') return { code: 'BAD_REQUEST', message: (e as Error).message };
    // A relayed write that reached the leader before its link failed may have applied there.
    if (e instanceof LinkError) return e.sent ? { code: 'TIMEOUT', message: `${e.message} (it may still apply)` } : { code: 'UNAVAILABLE', message: e.message };
    return { code: 'UNAVAILABLE', message: e instanceof Error ? e.message : String(e) };
  }
}

/**
 * A write this replica must not propose: a body too big to relay or replicate (the leader would
 * stop when it sends the entry), or a batch of more operations than one turn should apply.
 */
function sizeRefusal(req: Request, raw: RawRequest): WireError | undefined {
  if (raw.body.length > MAX_REQUEST_BODY_BYTES) return requestTooLarge(raw.body.length);
  return batchTooLarge(req);
}

export class BadKeyError extends Error {
  override readonly name = 'BadKeyError';
}

export class DeadlineError extends Error {
  override readonly name = 'DeadlineError';
}

/**
 * `p`, or a DeadlineError once `deadline` passes. `p` is always observed: a barrier or proposal
 * started just after its deadline (a late timer on a loaded machine) that later fails must not
 * become an unhandled rejection, which would stop the process.
 */
export function withDeadline<T>(p: Promise<T>, deadline: number): Promise<T> {
  const ms = deadline - Date.now();
  if (ms <= 0) {
    // Nobody waits for p now; its later rejection (a read barrier without a leader, a dropped
    // proposal) must not go unhandled: that would take the whole replica process down.
    p.catch(() => {});
    return Promise.reject(new DeadlineError('deadline passed'));
  }
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new DeadlineError('deadline passed')), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * A scan or count while partitions change hands: between the freeze at the source and the
 * activation at the destination neither group serves them, and just around it both answers may
 * hold them, so a page merged from every group would miss keys or repeat them. Retried (by the
 * shard routing, until the deadline) once the hand-over is settled, which takes about a second.
 */
function handingOver(): Response {
  return { kind: 'error', error: { code: 'UNAVAILABLE', message: 'partitions are changing hands between groups (a scan or count would miss or repeat their keys): retry' } };
}

function isWrite(req: Request): boolean {
  return req.op === 'put' || req.op === 'delete' || req.op === 'cas' || req.op === 'batch';
}
