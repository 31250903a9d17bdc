// Simulated clients of the shipped replica shell. Each runs one operation at a time against the
// node it believes leads, as the router would: writes are native-protocol requests with a client
// session (clientId, seq), proposed through Replica.propose and answered from the state machine's
// result; linearizable reads go through Replica.readBarrier (ReadIndex, or the lease) and then
// read the store; stale reads wait only for Replica.visibleBarrier. The history records what each
// client saw, for the linearizability checker:
//  - an operation whose answer arrived is complete;
//  - a write that entered some log but whose fate the client never learned (timeout, crash, the
//    node moved past it by a snapshot) is pending: it may or may not have happened;
//  - a write the node refused never happened and is left out; so is a read that got no answer.
// A retry of a write keeps its seq, so the session makes it apply at most once.
// Stale reads are not linearizable and stay out of the history; they are checked against what the
// same replica had answered before (read-your-writes).
import type { Operation } from '../lin/history.ts';
import type { NodeId } from '../../src/raft/types.ts';
import { DroppedError, NotLeaderError, OutcomeUnknownError } from '../../src/replica/replica.ts';
import { encodeWrite } from '../../src/replica/commands.ts';
import { HEADER_BYTES, encodeRequest, readFrameHeader, type Request, type Response } from '../../src/wire/index.ts';
import type { Host } from './host.ts';
import { Violation } from './invariants.ts';
import type { Checker } from './invariants.ts';
import type { Rng } from './prng.ts';
import type { Profile } from './profile.ts';

export interface ClientWorld {
  readonly now: number;
  readonly ids: readonly NodeId[];
  readonly checker: Checker;
  schedule(at: number, run: () => void): void;
  host(id: NodeId): Host | undefined;
  report(v: Violation): void;
  log(text: () => string): void;
  mark(a: number, b?: number, c?: number, d?: number): void;
}

type Mode = 'write' | 'index' | 'lease' | 'stale';

interface Attempt {
  client: Client;
  op: Operation;
  seq: number;
  mode: Mode;
  deadline: number;
  /** The log entry of a write, as the leader first accepted it. */
  data?: Uint8Array;
  at?: { node: NodeId; index: number; term: number };
  /** Which try is current: answers to an older one are ignored. */
  tries: number;
  /** The node serving the current try. */
  node?: NodeId;
}

interface Client {
  id: number;
  seq: number;
  guess: NodeId;
  busy: Attempt | undefined;
  /** Last value this client saw or wrote per key: good guesses for cas. */
  seen: Map<string, string | null>;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const text = (v: Uint8Array | null): string | null => (v === null ? null : dec.decode(v));

/** A write request as its log entry: the leader's clock, then the native request type and body. */
export function writeCommand(now: number, req: Request): Uint8Array {
  const frame = encodeRequest(0, req);
  return encodeWrite(now, readFrameHeader(frame)!.type, frame.subarray(HEADER_BYTES));
}

export class Clients {
  readonly history: Operation[] = [];
  /** Completed operations, by kind of path, for the summary. */
  readonly done = { write: 0, index: 0, lease: 0, stale: 0, pending: 0 };
  private readonly clients: Client[] = [];
  private stopped = false;

  constructor(
    private readonly world: ClientWorld,
    private readonly rng: Rng,
    private readonly profile: Profile,
  ) {
    for (let i = 1; i <= profile.clients; i++) {
      this.clients.push({ id: i, seq: 0, guess: rng.pick(world.ids), busy: undefined, seen: new Map() });
    }
  }

  start(): void {
    for (const c of this.clients) this.world.schedule(this.rng.range(0, 3), () => this.issue(c));
  }

  /** No new operations; those in flight end as pending (writes) or are dropped (reads). */
  stop(): void {
    this.stopped = true;
    for (const c of this.clients) if (c.busy) this.giveUp(c.busy, 'stopped');
  }

  // ---- Hooks from the world ----------------------------------------------------------------------

  /** The node moved past these indexes by a snapshot: the shell never answers them (their fate is unknown). */
  installed(h: Host, index: number): void {
    for (const c of this.clients) {
      const a = c.busy;
      if (a?.at && a.node === h.id && a.at.node === h.id && a.at.index <= index) this.giveUp(a, `n${h.id} installed a snapshot past it`);
    }
  }

  /** A crashed process answers nothing: everything waiting on it is given up. */
  crashed(h: Host): void {
    for (const c of this.clients) {
      const a = c.busy;
      if (a && a.node === h.id) this.giveUp(a, `n${h.id} crashed`);
    }
  }

  // ---- One operation -----------------------------------------------------------------------------

  private issue(c: Client): void {
    if (this.stopped || c.busy) return;
    const lull = lullEnd(this.profile, this.world.now);
    if (lull !== undefined) {
      this.world.schedule(lull, () => this.issue(c));
      return;
    }
    c.seq++;
    const key = `k${this.rng.int(this.profile.keys)}`;
    const value = `${c.id}.${c.seq}`;
    // A get with probability getShare; otherwise a write: put, delete and cas as 6:2:3.
    const g = this.profile.getShare;
    const r = this.rng.float();
    const w = ((r - g) / (1 - g)) * 11;
    const now = this.world.now;
    let op: Operation;
    let mode: Mode = 'write';
    if (r < g) {
      op = { clientId: c.id, op: 'get', key, call: now };
      const lease = this.profile.raft.leaseReads && this.rng.chance(this.profile.leaseReadP);
      mode = this.rng.chance(this.profile.staleReadP) ? 'stale' : lease ? 'lease' : 'index';
    } else if (w < 6) {
      op = { clientId: c.id, op: 'put', key, value, call: now };
    } else if (w < 8) {
      op = { clientId: c.id, op: 'delete', key, call: now };
    } else {
      const guess = c.seen.get(key);
      const expected = this.rng.chance(0.7) && guess !== undefined ? guess : this.rng.chance(0.5) ? null : `${c.id}.${this.rng.int(c.seq) + 1}`;
      op = { clientId: c.id, op: 'cas', key, value, expected, call: now };
    }
    const a: Attempt = { client: c, op, seq: c.seq, mode, deadline: now + this.profile.opTimeout, tries: 0 };
    c.busy = a;
    this.world.mark(30, c.id, c.seq);
    this.world.log(() => `c${c.id} #${c.seq} ${describe(op)} via ${mode}`);
    this.world.schedule(a.deadline, () => {
      if (c.busy === a) this.giveUp(a, 'timed out');
    });
    this.attempt(a);
  }

  private attempt(a: Attempt): void {
    const c = a.client;
    if (c.busy !== a) return;
    const tryNo = ++a.tries;
    a.node = undefined;
    const isRead = a.op.op === 'get';
    const target = isRead && a.mode !== 'lease' && this.rng.chance(this.profile.followerReadP) ? this.rng.pick(this.world.ids) : c.guess;
    const h = this.world.host(target);
    const proc = h?.proc;
    if (h === undefined || proc === undefined) {
      c.guess = this.rng.pick(this.world.ids);
      this.retryLater(a);
      return;
    }
    a.node = target;
    const current = (): boolean => c.busy === a && a.tries === tryNo && h.proc === proc;
    const failed = (e: unknown): void => {
      if (!current()) return;
      // Overtaken by a snapshot on that node: whether it applied is unknown.
      if (e instanceof OutcomeUnknownError) return this.giveUp(a, `n${target}: ${e.message}`);
      if (e instanceof NotLeaderError) c.guess = e.leader !== 0 && e.leader !== target ? e.leader : this.rng.pick(this.world.ids);
      else if (!(e instanceof DroppedError)) return this.world.report(new Violation('core-assertion', `n${target} failed a request: ${(e as Error).stack}`));
      this.world.log(() => `c${c.id} #${a.seq} at n${target}: ${(e as Error).message}; retries`);
      this.retryLater(a);
    };
    const replica = proc.replica;
    if (a.mode === 'stale') {
      // As the router serves a stale read: wait for the answered apply, then read the store.
      const owed = proc.answered;
      void (replica.visibleBarrier() ?? Promise.resolve()).then(() => {
        if (!current()) return;
        if (proc.store.applied < owed) {
          return this.world.report(
            new Violation('read-your-writes', `n${target} serves a stale read at applied ${proc.store.applied} after answering a write at ${owed}`),
          );
        }
        this.world.log(() => `c${c.id} #${a.seq} stale read at n${target}: ${JSON.stringify(text(proc.store.get(enc.encode(a.op.key))))}`);
        this.done.stale++;
        this.finish(a);
      }, failed);
      return;
    }
    if (isRead) {
      void replica.readBarrier({ lease: a.mode === 'lease' }).then(() => {
        if (!current()) return;
        a.op.ret = this.world.now;
        a.op.output = text(proc.store.get(enc.encode(a.op.key)));
        a.op.note = `${a.mode === 'lease' ? 'lease read' : 'read index'} at n${target}, applied ${proc.store.applied}`;
        this.complete(a);
      }, failed);
      return;
    }
    a.data ??= writeCommand(a.op.call, this.request(a));
    const before = replica.node.status.lastIndex;
    const answer = replica.propose(a.data);
    const s = replica.node.status;
    if (s.lastIndex !== before && a.at === undefined) {
      a.at = { node: target, index: s.lastIndex, term: s.lastTerm };
      this.world.log(() => `c${c.id} #${a.seq} proposed at n${target} as ${s.lastIndex}/t${s.lastTerm}`);
    }
    const index = s.lastIndex;
    const term = s.lastTerm;
    void answer.then((res) => {
      if (!current()) return;
      proc.answered = Math.max(proc.answered, index);
      try {
        this.world.checker.answered(h, index, term);
      } catch (e) {
        return this.world.report(e as Violation);
      }
      this.answered(a, res, `n${target} ${index}/t${term}`);
    }, failed);
  }

  private request(a: Attempt): Request {
    const o = a.op;
    const id = { clientId: BigInt(a.client.id), seq: a.seq };
    const key = enc.encode(o.key);
    if (o.op === 'put') return { op: 'put', key, value: enc.encode(o.value ?? ''), ...id };
    if (o.op === 'delete') return { op: 'delete', key, ...id };
    return { op: 'cas', key, expected: o.expected === null || o.expected === undefined ? null : enc.encode(o.expected), value: enc.encode(o.value ?? ''), ...id };
  }

  private answered(a: Attempt, res: Response, where: string): void {
    if (res.kind === 'error') {
      return this.world.report(new Violation('core-assertion', `${where} answers c${a.client.id} #${a.seq} with ${res.error.code}: ${res.error.message}`));
    }
    a.op.ret = this.world.now;
    a.op.note = `log ${where}`;
    // A cas answered without its result (only a broken shell does that) claims it swapped.
    if (a.op.op === 'cas') a.op.output = res.kind === 'cas' ? res.ok : true;
    this.complete(a);
  }

  private retryLater(a: Attempt): void {
    a.node = undefined;
    this.world.schedule(this.world.now + this.rng.range(0.2, 1.5), () => this.attempt(a));
  }

  private complete(a: Attempt): void {
    const o = a.op;
    this.history.push(o);
    this.done[a.mode]++;
    if (o.op === 'put' || (o.op === 'cas' && o.output === true)) a.client.seen.set(o.key, o.value ?? null);
    else if (o.op === 'delete') a.client.seen.set(o.key, null);
    else if (o.op === 'get') a.client.seen.set(o.key, (o.output as string | null | undefined) ?? null);
    this.world.log(() => `c${a.client.id} #${a.seq} done: ${describe(o)} -> ${JSON.stringify(o.output ?? null)}`);
    this.finish(a);
  }

  private giveUp(a: Attempt, why: string): void {
    // A write that some node accepted may still commit: it stays, as pending.
    const pending = a.at !== undefined && a.op.op !== 'get';
    if (pending) {
      a.op.ret = Infinity;
      a.op.note = `proposed at n${a.at?.node} as ${a.at?.index}/t${a.at?.term}; ${why}`;
      this.history.push(a.op);
      this.done.pending++;
    }
    this.world.log(() => `c${a.client.id} #${a.seq} gives up (${why})${pending ? ': pending' : ''}`);
    a.client.guess = this.rng.pick(this.world.ids);
    this.finish(a);
  }

  private finish(a: Attempt): void {
    const c = a.client;
    c.busy = undefined;
    if (!this.stopped) this.world.schedule(this.world.now + this.rng.range(0, 2), () => this.issue(c));
  }
}

/** When the lull under way at `now` ends (no client starts an operation meanwhile), if any. */
export function lullEnd(p: Profile, now: number): number | undefined {
  if (!p.lull) return undefined;
  const into = now % p.lull.every;
  return into >= p.lull.every - p.lull.ticks ? now - into + p.lull.every : undefined;
}

function describe(o: Operation): string {
  if (o.op === 'put') return `put ${o.key}=${o.value}`;
  if (o.op === 'cas') return `cas ${o.key} ${o.expected ?? 'nil'}→${o.value}`;
  return `${o.op} ${o.key}`;
}
