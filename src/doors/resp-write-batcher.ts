// Group commit of blind writes across the RESP door's connections. Plain SETs and MSETs handed over
// in one event-loop iteration, from any connection, leave together as one native batch (up to
// maxOps puts / maxBytes) once that iteration's input is read (setImmediate), so 50 connections
// with one SET each cost one Raft entry, one encode and one apply instead of fifty.
//
// Order. Batches are proposed in the order they were opened, and every batch carries this door's
// exactly-once session: a random client id and a seq that grows with each batch. The router may
// retry a batch inside (not appended: NOT_LEADER; overwritten by a new leader: dropped; WRONG_GROUP
// during a hand-off), so its retry could reach the log after a later batch; the state machine
// refuses a seq lower than the last one it applied for the session ("stale"), so a batch is applied
// before every later batch of this door, or not at all. A connection hands its writes over in its
// own order, so its writes apply in its order too. A retried batch that did apply is answered from
// the session (applied once). In a sharded cluster this holds per session id within a group, and
// the router derives per-partition ids only for batches spanning partitions (docs/doors.md).
//
// Outcome. A batch is atomic within a partition. Every command in a batch gets the batch's answer:
// OK, a refused stale batch (-TRYAGAIN, not applied), or the error. In a sharded cluster a batch
// spanning partitions is split by the router: parts applied beside a failed one, or a part in doubt,
// make it TIMEOUT (may have applied), and a stale refusal after a relay's unanswered attempt is
// TIMEOUT too (group-call.ts); otherwise the first error.
//
// Waiting for the connections just answered. Clients in a closed loop (redis-benchmark -c 50, a
// pool of application threads) send their next write as soon as they read an answer, but each
// connection's answer is a socket write of its own, so their next writes reach the door over
// several event-loop iterations. Proposing what the first iteration read started a Raft round
// for a few writes, and the rest waited behind its flush and paid a round of their own: 19 puts
// per batch and twice the servers' CPU per write where all 50 returning together made batches of
// 50 (docs/doors.md). So a batch may wait for them: once an answer leaves at least
// lingerMinConnections prompt connections waiting for their clients, and one of them has sent
// again, the next batch waits until all of them have (or closed), at most lingerMs after that
// answer. A connection is prompt when its client sent its next command within lingerMs of the
// previous answer that left it nothing to do: clients in a closed loop are, while an open-loop
// client's connections mostly idle until their next arrival, and no batch waits for those. A lone
// client is never held (its answer leaves fewer than the minimum), nor a connection that is not
// one of those just answered.
import { randomBytes } from 'node:crypto';
import { isStaleWrite, type BatchOp, type Request, type Response } from '../wire/index.ts';
import { KvError, type KvOps } from './kv-ops.ts';
import { resp, type RespValue } from './resp-codec.ts';
import { replyForError } from './resp-command.ts';

/** The answer to a batch the state machine refused because a later batch of this door was applied first. */
export const STALE_REPLY = resp.error('TRYAGAIN not applied: a later write was applied first (leader change); retry it');

export interface RespWriteBatcherOptions {
  maxOps?: number;
  maxBytes?: number;
  /** When a batch opened now leaves (default: setImmediate, after this iteration's input). */
  defer?: (fn: () => void) => void;
  /**
   * Longest wait, after an answer, for the prompt connections it answered to write again; also
   * how soon a client must answer to be prompt (default 2 ms; 0: never wait).
   */
  lingerMs?: number;
  /** An answer must leave this many prompt connections waiting for their clients to make a batch wait (default 4). */
  lingerMinConnections?: number;
  now?: () => number;
  /** Runs `fn` in `ms` (default setTimeout); returns a cancel. */
  timer?: (fn: () => void, ms: number) => () => void;
}

/**
 * Called once with a batch's answer. Returns true (exactly) when the answer left its connection with
 * nothing to do: a client in a closed loop is about to send its next command.
 */
export type BatchDone = (reply: RespValue) => unknown;

interface Batch {
  ops: BatchOp[];
  bytes: number;
  done: BatchDone[];
  /** The connection of each `done` (undefined: not known). */
  conns: (object | undefined)[];
}

export class RespWriteBatcher {
  /** This door's session: never 0 (0 means "no session"). */
  readonly clientId: bigint;
  /** `waits`: batches that waited for the connections just answered. */
  readonly stats = { batches: 0, puts: 0, stale: 0, waits: 0 };
  private seq = 0;
  private open: Batch | null = null;
  private readonly closed: Batch[] = [];
  private scheduled = false;
  private readonly maxOps: number;
  private readonly maxBytes: number;
  private readonly defer: (fn: () => void) => void;
  private readonly lingerMs: number;
  private readonly lingerMin: number;
  private readonly now: () => number;
  private readonly timer: (fn: () => void, ms: number) => () => void;
  /** Prompt connections an answer left waiting for their clients, that have not sent anything since. */
  private readonly expected = new Set<object>();
  /** When an answer left the connection with nothing to do, until its client sends again. */
  private readonly idleSince = new WeakMap<object, number>();
  /** Connections whose client last sent again within lingerMs of such an answer. */
  private readonly prompt = new WeakSet<object>();
  /** When the latest answer that left a prompt connection waiting came; since the last batch left, how many prompt connections answers left waiting, and how many of those came back. */
  private answeredAt = 0;
  private answered = 0;
  private returned = 0;
  /** Set while the next batch waits for `expected`: ends the wait early. */
  private cancelWait: (() => void) | null = null;

  constructor(
    private readonly kv: KvOps,
    opts: RespWriteBatcherOptions = {},
  ) {
    this.maxOps = opts.maxOps ?? 1024;
    this.maxBytes = opts.maxBytes ?? 2 << 20;
    this.defer = opts.defer ?? ((fn) => void setImmediate(fn));
    this.lingerMs = opts.lingerMs ?? 2;
    this.lingerMin = opts.lingerMinConnections ?? 4;
    this.now = opts.now ?? (() => performance.now());
    this.timer =
      opts.timer ??
      ((fn, ms) => {
        const t = setTimeout(fn, ms);
        return () => clearTimeout(t);
      });
    this.clientId = randomBytes(8).readBigUInt64BE(0) || 1n;
  }

  /**
   * Puts checked already (KvOps.checkBatch), `bytes` their key and value bytes; `done` is called
   * once with the answer. Writes added earlier are proposed no later than these. `conn` names the
   * connection handing them over (see `arrived`).
   */
  add(ops: readonly BatchOp[], bytes: number, done: BatchDone, conn?: object): void {
    if (conn) this.arrived(conn);
    let b = this.open;
    if (b && b.ops.length > 0 && (b.ops.length + ops.length > this.maxOps || b.bytes + bytes > this.maxBytes)) {
      this.closed.push(b);
      b = null;
      if (this.cancelWait) this.endWait(); // a full batch never waits
    }
    if (!b) b = this.open = { ops: [], bytes: 0, done: [], conns: [] };
    for (const o of ops) b.ops.push(o);
    b.bytes += bytes;
    b.done.push(done);
    b.conns.push(conn);
    if (!this.scheduled) {
      this.scheduled = true;
      this.defer(this.flush);
    }
  }

  /** The connection `conn` received input from its client, or closed: the next batch no longer waits for it. */
  arrived(conn: object): void {
    const since = this.idleSince.get(conn);
    if (since !== undefined) {
      this.idleSince.delete(conn);
      if (this.now() - since <= this.lingerMs) this.prompt.add(conn);
      else this.prompt.delete(conn);
    }
    if (!this.expected.delete(conn)) return;
    this.returned++;
    if (this.expected.size === 0 && this.cancelWait) this.endWait();
  }

  private endWait(): void {
    this.cancelWait!();
    this.cancelWait = null;
    this.defer(this.flush); // after this iteration's input, as any batch
  }

  /** Whether the open batch should wait for more of the connections just answered (arming the end of the wait). */
  private waiting(): boolean {
    if (this.cancelWait) return true;
    if (this.open === null || this.closed.length > 0 || this.expected.size === 0 || this.returned === 0 || this.answered < this.lingerMin) return false;
    const left = this.answeredAt + this.lingerMs - this.now();
    if (left <= 0) return false;
    this.cancelWait = this.timer(this.waitOver, left);
    this.stats.waits++;
    return true;
  }

  private readonly waitOver = (): void => {
    // Node's timers count from the loop's cached clock and may fire early; an answer since then
    // that left connections waiting (now waited for too) moves the end of the wait.
    const left = this.answeredAt + this.lingerMs - this.now();
    if (left > 0) {
      this.cancelWait = this.timer(this.waitOver, left);
      return;
    }
    this.cancelWait = null;
    this.flush();
  };

  private readonly flush = (): void => {
    if (this.waiting()) return;
    // Whoever has not written again by now is not waited for later.
    this.expected.clear();
    this.answered = 0;
    this.returned = 0;
    this.scheduled = false;
    const open = this.open;
    this.open = null;
    if (open) this.closed.push(open);
    for (const b of this.closed) this.send(b);
    this.closed.length = 0;
  };

  private send(b: Batch): void {
    this.stats.batches++;
    this.stats.puts += b.ops.length;
    const req: Request = { op: 'batch', ops: b.ops, clientId: this.clientId, seq: ++this.seq };
    const settle = (reply: RespValue): void => {
      const now = this.now();
      for (let i = 0; i < b.done.length; i++) {
        const conn = b.conns[i];
        if (b.done[i]!(reply) !== true || conn === undefined) continue;
        this.idleSince.set(conn, now);
        if (this.prompt.has(conn) && !this.expected.has(conn)) {
          this.expected.add(conn);
          this.answered++;
          // Only an answer that leaves someone to wait for moves the end of the wait: lingerMs after it.
          this.answeredAt = now;
        }
      }
    };
    let p: Promise<Response>;
    try {
      p = this.kv.execute(req);
    } catch (e) {
      return settle(replyForError(e));
    }
    p.then(
      (r) => settle(this.replyFor(r)),
      (e: unknown) => settle(replyForError(e)),
    );
  }

  private replyFor(r: Response): RespValue {
    if (r.kind === 'ok') return resp.ok;
    if (r.kind !== 'error') return replyForError(new KvError({ code: 'UNAVAILABLE', message: `unexpected ${r.kind} response` }));
    // The state machine's answer to a seq lower than the session's last (src/replica/state-machine.ts).
    if (isStaleWrite(r)) {
      this.stats.stale++;
      return STALE_REPLY;
    }
    return replyForError(new KvError(r.error));
  }
}
