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
}

interface Batch {
  ops: BatchOp[];
  bytes: number;
  done: ((reply: RespValue) => void)[];
}

export class RespWriteBatcher {
  /** This door's session: never 0 (0 means "no session"). */
  readonly clientId: bigint;
  readonly stats = { batches: 0, puts: 0, stale: 0 };
  private seq = 0;
  private open: Batch | null = null;
  private readonly closed: Batch[] = [];
  private scheduled = false;
  private readonly maxOps: number;
  private readonly maxBytes: number;
  private readonly defer: (fn: () => void) => void;

  constructor(
    private readonly kv: KvOps,
    opts: RespWriteBatcherOptions = {},
  ) {
    this.maxOps = opts.maxOps ?? 1024;
    this.maxBytes = opts.maxBytes ?? 2 << 20;
    this.defer = opts.defer ?? ((fn) => void setImmediate(fn));
    this.clientId = randomBytes(8).readBigUInt64BE(0) || 1n;
  }

  /**
   * Puts checked already (KvOps.checkBatch), `bytes` their key and value bytes; `done` is called
   * once with the answer. Writes added earlier are proposed no later than these.
   */
  add(ops: readonly BatchOp[], bytes: number, done: (reply: RespValue) => void): void {
    let b = this.open;
    if (b && b.ops.length > 0 && (b.ops.length + ops.length > this.maxOps || b.bytes + bytes > this.maxBytes)) {
      this.closed.push(b);
      b = null;
    }
    if (!b) b = this.open = { ops: [], bytes: 0, done: [] };
    for (const o of ops) b.ops.push(o);
    b.bytes += bytes;
    b.done.push(done);
    if (!this.scheduled) {
      this.scheduled = true;
      this.defer(this.flush);
    }
  }

  private readonly flush = (): void => {
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
      for (const d of b.done) d(reply);
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
