// Drives one Raft node: the tick clock, the Ready loop (persist → send → apply → advance), and the
// promises of the requests waiting on it (proposals waiting to apply, reads waiting for a read
// index and then for the state machine to catch up).
import { RaftNode } from '../raft/node.ts';
import type { ConfChange } from '../raft/conf.ts';
import { MsgType, type Entry, type Message, type PersistedState, type RaftConfig, type Ready, type SoftState } from '../raft/types.ts';
import type { Response } from '../wire/index.ts';
import type { ReplicaEnv } from './env.ts';
import { shellMutations } from './mutations.ts';
import { Pacer } from '../timers/every.ts';

/** A read's ctx: the start of the process that asked, then the read's id there (two doubles). */
const READ_CTX_BYTES = 16;

/** What the replica needs from its disk. */
export interface ReplicaStorage {
  /** Everything one Ready asks to persist, durably (fsynced), in one write. */
  persist(rd: Ready): Promise<void>;
  /**
   * Applies committed entries (and the applied index) atomically; resolves once readers see them.
   * `onAnswers` gets one result per client write as soon as they are computed, possibly before.
   */
  apply(entries: Entry[], onAnswers: (answers: Map<number, Response>) => void): Promise<void>;
  /**
   * A read waits for applies to become visible: commit what is held back now (see the store).
   * Required: a shell that leaves it out makes every such read wait for the store's checkpoint.
   */
  commitSoon(): void;
  /**
   * The node is no longer blank (RaftNode.blank): remove the store's blank mark, durably. Called
   * once, after the advance that ended it. Required, so that no shell forgets it: a mark never
   * removed leaves the replica blank at every start.
   */
  clearBlank(): void;
}

export interface ReplicaOptions {
  raft: Omit<RaftConfig, 'random' | 'snapshots'> & Partial<Pick<RaftConfig, 'random'>>;
  snapshots: RaftConfig['snapshots'];
  persisted: PersistedState;
  storage: ReplicaStorage;
  /** Clock, timers and randomness of the process (systemEnv, or the simulator's). */
  env: ReplicaEnv;
  /** Hands outgoing Raft messages to the transport. */
  send: (msgs: Message[]) => void;
  tickMs: number;
  /** Compact the log once this many entries are applied beyond its base, keeping `logTail`. */
  compactEvery?: number;
  logTail?: number;
  onSoftState?: (s: SoftState) => void;
  /** A fatal storage error: the replica stops rather than serve from a state it cannot persist. */
  onFatal?: (e: unknown) => void;
}

/** A leader's messages that acknowledge nothing: the early-send exception of the Ready contract. */
function sendableBeforePersist(m: Message): boolean {
  if (shellMutations.ackBeforeSync && m.type === MsgType.AppendResp) return true;
  return m.type === MsgType.Append || m.type === MsgType.Heartbeat || m.type === MsgType.Snapshot || m.type === MsgType.TimeoutNow;
}

export class NotLeaderError extends Error {
  override readonly name = 'NotLeaderError';
  constructor(readonly leader: number, message = 'not the leader') {
    super(message);
  }
}

/** The proposal's entry was replaced by another leader's: it did not apply (the client retries). */
export class DroppedError extends Error {
  override readonly name = 'DroppedError';
}

/**
 * The proposal's index was covered by a snapshot this replica installed before it applied the
 * entry there (it fell behind, e.g. a leader cut off while the group compacted past the index).
 * The group committed some entry at that index, this one or another leader's: whether the request
 * applied is unknown, so it must not be answered as "not applied" (DroppedError) nor retried as
 * if it had not been. Its place in the answers is the one of a request that timed out (TIMEOUT).
 */
export class OutcomeUnknownError extends Error {
  override readonly name = 'OutcomeUnknownError';
}

/**
 * The replica was stopped (or stopped itself on a fatal storage error) before the request was
 * made: it never entered the log, so it did not and will not apply here (UNAVAILABLE, "not
 * applied"). Requests already pending at the stop get a plain error instead: other replicas may
 * still commit their entries.
 */
export class StoppedError extends Error {
  override readonly name = 'StoppedError';
  constructor() {
    super('replica stopped: the request was not proposed');
  }
}

interface ProposalWaiter {
  term: number;
  resolve: (r: Response) => void;
  reject: (e: Error) => void;
}

interface ReadWaiter {
  index: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

export class Replica {
  readonly node: RaftNode;
  private readonly opts: ReplicaOptions;
  private proposals = new Map<number, ProposalWaiter>();
  /** Reads waiting for their read index (keyed by ctx) and then for apply. */
  private readsById = new Map<number, ReadWaiter>();
  private readsAwaitingApply: ReadWaiter[] = [];
  /** A follower's read barrier whose ReadIndex has not left the node yet: later reads join it. */
  private unsentReadIndex: Promise<void> | undefined;
  private loopRunning = false;
  private loopScheduled = false;
  /** Ticks: every tickMs, or longer while quiet (retime). */
  private readonly ticker: Pacer;
  private lastTickAt = 0;
  /** When the leader last became unknown (or the replica started): see leaderlessForMs. */
  private leaderlessSince = 0;
  private stopped = false;
  private soft: SoftState;
  private durableTerm: number;
  private durableVote: number;
  /** The store still holds its blank mark (RaftConfig.blankStart) and the node was blank. */
  private blankMarked: boolean;
  /** The apply in progress whose answers may already have left (see visibleBarrier). */
  private answeredApply: Promise<void> | undefined;
  /** The highest index whose apply reads can see (committed). */
  private visibleApplied = 0;
  /** The highest index handed to storage.apply (or installed by a snapshot): its answers will come. */
  private handedToApply = 0;
  /** Statistics for /metrics and benchmarks. */
  readonly stats = { readies: 0, persisted: 0, persistMs: 0, applied: 0, leaderChanges: 0, maxBatch: 0, readsJoined: 0 };

  constructor(opts: ReplicaOptions) {
    this.opts = opts;
    this.ticker = new Pacer(() => this.catchUpTicks(), opts.env.every);
    this.node = new RaftNode(
      { ...opts.raft, random: opts.raft.random ?? opts.env.random, snapshots: opts.snapshots },
      opts.persisted,
    );
    this.soft = { role: 'follower', leader: 0, term: opts.persisted.hardState.term };
    this.leaderlessSince = opts.env.now();
    this.durableTerm = opts.persisted.hardState.term;
    this.durableVote = opts.persisted.hardState.vote;
    this.blankMarked = opts.raft.blankStart === true;
    this.visibleApplied = opts.persisted.applied;
    this.handedToApply = opts.persisted.applied;
  }

  start(): void {
    this.lastTickAt = this.opts.env.now();
    this.leaderlessSince = this.lastTickAt;
    this.retime();
  }

  /**
   * A quiet replica (an idle group: heartbeats once per election timeout) needs no tick of its
   * own every tickMs: it wakes every half election timeout and catches up on the ticks due
   * (catchUpTicks counts them by the clock). Any work makes it un-quiet, and it ticks every tickMs
   * again from the Ready that did.
   */
  private retime(): void {
    const slow = Math.max(1, Math.floor(this.opts.raft.electionTicks / 2));
    const period = this.node.isQuiet ? slow * this.opts.tickMs : this.opts.tickMs;
    if (!this.stopped) this.ticker.pace(period);
  }

  stop(): void {
    this.stopped = true;
    this.ticker.stop();
    const err = new Error('replica stopped');
    for (const w of this.proposals.values()) w.reject(err);
    for (const w of this.readsById.values()) w.reject(err);
    for (const w of this.readsAwaitingApply) w.reject(err);
    this.proposals.clear();
    this.readsById.clear();
    this.readsAwaitingApply = [];
    this.unsentReadIndex = undefined;
  }

  get leader(): number {
    return this.soft.leader;
  }

  /** How long this replica has known no leader (0 while it knows one). */
  get leaderlessForMs(): number {
    return this.soft.leader === 0 ? this.opts.env.now() - this.leaderlessSince : 0;
  }

  /** Blank (RaftNode.blank) until the store's blank mark is removed: not yet fit to take traffic. */
  get blank(): boolean {
    return this.blankMarked;
  }

  get isLeader(): boolean {
    return this.soft.role === 'leader';
  }

  get softState(): SoftState {
    return this.soft;
  }

  step(m: Message): void {
    if (this.stopped) return;
    this.node.step(m);
    this.schedule();
  }

  /** Proposes a command; resolves with its result once applied on this replica. */
  propose(data: Uint8Array): Promise<Response> {
    // Nothing runs the Ready loop any more: the entry would wait in memory until the caller's deadline.
    if (this.stopped) return Promise.reject(new StoppedError());
    const r = this.node.propose(data);
    if (!r.ok) return Promise.reject(new NotLeaderError(r.leader, r.error));
    this.schedule();
    return new Promise((resolve, reject) => this.proposals.set(r.index, { term: r.term, resolve, reject }));
  }

  proposeConf(change: ConfChange): Promise<Response> {
    if (this.stopped) return Promise.reject(new StoppedError());
    const r = this.node.proposeConf(change);
    if (!r.ok) return Promise.reject(new NotLeaderError(r.leader, r.reason ?? r.error));
    this.schedule();
    return new Promise((resolve, reject) => this.proposals.set(r.index, { term: r.term, resolve, reject }));
  }

  /**
   * Resolves once this replica's state machine reflects every write committed before the call:
   * ReadIndex through the leader (also from a follower), then wait for apply. `lease`: a leader
   * configured with leaseReads may confirm it from its lease instead of a heartbeat round.
   */
  readBarrier(opts: { lease?: boolean } = {}): Promise<void> {
    if (this.stopped) return Promise.reject(new StoppedError());
    // Deliver ticks missed during a pause first, so time-based decisions see the real clock.
    this.catchUpTicks();
    if (this.unsentReadIndex) {
      this.stats.readsJoined++;
      return this.unsentReadIndex;
    }
    const id = this.opts.env.nextId();
    const ctx = Buffer.allocUnsafe(READ_CTX_BYTES);
    ctx.writeDoubleBE(this.opts.env.incarnation, 0);
    ctx.writeDoubleBE(id, 8);
    let asked = false;
    const barrier = new Promise<void>((resolve, reject) => {
      this.readsById.set(id, { index: 0, resolve, reject });
      asked = this.node.readIndex(ctx, opts) === 'asked';
      this.schedule();
    });
    // A follower's ReadIndex waits in the node until the next Ready: the leader picks the read
    // point when the message reaches it, after every read that joins before it leaves. Reads
    // arriving together then cost one message each way instead of one per read. (A leader picks
    // its point now, so a later read must not share it.)
    if (asked) {
      this.unsentReadIndex = barrier;
      if (shellMutations.readJoinsSentBarrier) {
        const forget = (): void => {
          if (this.unsentReadIndex === barrier) this.unsentReadIndex = undefined;
        };
        void barrier.then(forget, forget);
      }
    }
    return barrier;
  }

  /**
   * Resolves once every write this replica has answered is visible to its reads (undefined: all
   * are). A stale read waits for it, so a client reading where it wrote sees its own write.
   */
  visibleBarrier(): Promise<void> | undefined {
    if (shellMutations.staleReadSkipsBarrier) return undefined;
    if (this.answeredApply) this.opts.storage.commitSoon();
    return this.answeredApply;
  }

  /** Compacts the log through `index` (applied already) now, not only at the compactEvery threshold. */
  compact(index: number): void {
    this.node.compact(Math.min(index, this.visibleApplied));
    this.schedule();
  }

  transferLeadership(to: number): boolean {
    const ok = this.node.transferLeadership(to);
    this.schedule();
    return ok;
  }

  /** Runs as many ticks as the monotonic clock says are due (several after a pause). */
  private catchUpTicks(): void {
    if (this.stopped) return;
    const now = this.opts.env.now();
    const due = Math.floor((now - this.lastTickAt) / this.opts.tickMs);
    if (due <= 0) return;
    this.lastTickAt += due * this.opts.tickMs;
    // After a very long pause, a few election timeouts' worth of ticks is as good as all of them.
    const n = Math.min(due, 4 * this.opts.raft.electionTicks);
    for (let i = 0; i < n; i++) this.node.tick();
    this.schedule();
  }

  private schedule(): void {
    if (this.loopScheduled || this.loopRunning) return;
    this.loopScheduled = true;
    // Let the rest of this event-loop turn add to the batch first (group commit).
    this.opts.env.defer(() => {
      this.loopScheduled = false;
      void this.loop();
    });
  }

  private async loop(): Promise<void> {
    if (this.loopRunning || this.stopped) return;
    this.loopRunning = true;
    try {
      while (!this.stopped && this.node.hasReady()) {
        // The Ready takes the queued ReadIndex out of the node: no read may join it any more.
        if (!shellMutations.readJoinsSentBarrier) this.unsentReadIndex = undefined;
        await this.handleReady(this.node.ready());
      }
      this.retime();
    } catch (e) {
      this.fatal(e);
    } finally {
      this.loopRunning = false;
    }
  }

  private async handleReady(rd: Ready): Promise<void> {
    this.stats.readies++;
    if (rd.softState) this.onSoftState(rd.softState);
    if (rd.entries.length > this.stats.maxBatch) this.stats.maxBatch = rd.entries.length;
    // Leader-originated messages acknowledge nothing, so they may leave before our own fsync
    // (the leader counts itself only once advance() says its entries are durable): followers then
    // fsync in parallel with us. Not when this Ready changes term or vote: nothing of a new term
    // may leave before the term is durable.
    const hs = rd.hardState;
    const electionState = hs !== undefined && (hs.term !== this.durableTerm || hs.vote !== this.durableVote);
    const early = electionState ? [] : rd.messages.filter(sendableBeforePersist);
    const late = early.length === 0 ? rd.messages : rd.messages.filter((m) => !sendableBeforePersist(m));
    if (early.length > 0) this.opts.send(early);
    const t0 = this.opts.env.now();
    // Issued in the same turn, the apply joins the persist in one storage commit (one fsync).
    const persisting = this.opts.storage.persist(rd);
    // Committed entries are durable on a quorum already: their answers leave as soon as the apply
    // has computed them, without waiting for its commit (reads wait for it: visibleBarrier).
    const committed = rd.committedEntries;
    const applying =
      committed.length > 0
        ? this.opts.storage.apply(committed, (answers) => {
            for (const e of committed) this.settleProposal(e, answers.get(e.index));
          })
        : undefined;
    if (applying) {
      this.handedToApply = Math.max(this.handedToApply, committed.at(-1)!.index);
      const visible = applying.then(
        () => undefined,
        () => undefined, // the failure itself is handled where `applying` is awaited
      );
      this.answeredApply = visible;
      const last = committed.at(-1)!.index;
      const count = committed.length;
      void visible.then(() => {
        if (this.answeredApply === visible) this.answeredApply = undefined;
        if (last > this.visibleApplied) this.visibleApplied = last;
        this.stats.applied += count;
        this.releaseReads();
      });
      // Nobody waits for the apply's commit (the next Ready's apply reads through it); a failed
      // one stops the replica as a failed persist does.
      applying.catch((e: unknown) => this.fatal(e));
    }
    await persisting;
    this.stats.persistMs += this.opts.env.now() - t0;
    this.stats.persisted += rd.entries.length;
    if (hs) {
      this.durableTerm = hs.term;
      this.durableVote = hs.vote;
    }
    // An installed snapshot is applied state, visible once persisted, without an apply of its own.
    if (rd.snapshot && rd.snapshot.index > this.visibleApplied) this.visibleApplied = rd.snapshot.index;
    if (rd.snapshot) this.settleOvertaken(rd.snapshot.index);
    if (late.length > 0) this.opts.send(late);
    if (shellMutations.answerBeforeCommit && this.soft.role === 'leader') for (const e of rd.entries) this.settleProposal(e, { kind: 'ok' });
    for (const rs of rd.readStates) {
      const w = this.readWaiterOf(rs.ctx);
      if (!w) continue;
      w.index = rs.index;
      this.readsAwaitingApply.push(w);
    }
    for (const ctx of rd.failedReads) {
      const w = this.readWaiterOf(ctx);
      if (!w) continue;
      w.reject(new NotLeaderError(this.soft.leader, 'no leader to confirm the read'));
    }
    this.node.advance(rd);
    // Caught up: the mark goes only after advance, so its entries are durable (RaftNode.blank).
    if (this.blankMarked && !this.node.blank) {
      this.blankMarked = false;
      this.opts.storage.clearBlank();
    }
    this.releaseReads();
    // Reads still waiting for an apply: its writes must not sit in the store's held-back batch.
    if (this.readsAwaitingApply.length > 0) this.opts.storage.commitSoon();
    this.maybeCompact();
  }

  /**
   * Takes the waiting read that `ctx` names. An answer to a request of an earlier start of this
   * process (in flight when it crashed) names none: its index predates every read of this start,
   * though the ids begin at 1 again.
   */
  private readWaiterOf(ctx: Uint8Array): ReadWaiter | undefined {
    if (ctx.byteLength !== READ_CTX_BYTES) return undefined;
    const view = Buffer.from(ctx.buffer, ctx.byteOffset, ctx.byteLength);
    if (view.readDoubleBE(0) !== this.opts.env.incarnation && !shellMutations.readAcceptsEarlierStart) return undefined;
    const id = view.readDoubleBE(8);
    const w = this.readsById.get(id);
    if (w) this.readsById.delete(id);
    return w;
  }

  private settleProposal(e: Entry, result: Response | undefined): void {
    const w = this.proposals.get(e.index);
    if (!w) return;
    this.proposals.delete(e.index);
    if (w.term !== e.term) w.reject(new DroppedError(`entry ${e.index} was replaced by a newer leader`));
    else w.resolve(result ?? { kind: 'ok' });
  }

  /**
   * A snapshot through `index` is installed: the entries it covers that were never handed to apply
   * here never will be, so their proposals would wait forever (a caller without a deadline, such as
   * the resharding reconciler, for good). Whether each applied is unknown. Entries handed to apply
   * earlier keep their proposals: the apply answers them.
   */
  private settleOvertaken(index: number): void {
    for (const [i, w] of this.proposals) {
      if (i > index || i <= this.handedToApply) continue;
      this.proposals.delete(i);
      w.reject(new OutcomeUnknownError(`entry ${i} was overtaken by a snapshot through ${index}: it may or may not have applied`));
    }
    if (index > this.handedToApply) this.handedToApply = index;
  }

  private fatal(e: unknown): void {
    if (this.stopped) return;
    this.stopped = true;
    this.ticker.stop();
    this.opts.onFatal?.(e);
  }

  private releaseReads(): void {
    // What reads see: the core counts an apply as soon as it is handed over.
    const applied = this.visibleApplied;
    if (this.readsAwaitingApply.length === 0) return;
    const still: ReadWaiter[] = [];
    for (const w of this.readsAwaitingApply) {
      if (w.index <= applied) w.resolve();
      else still.push(w);
    }
    this.readsAwaitingApply = still;
  }

  private onSoftState(s: SoftState): void {
    // Proposals outlive a change of leader: they may still commit under the next one, so they stay
    // until applied, replaced, or given up by their caller.
    if (s.leader !== this.soft.leader) this.stats.leaderChanges++;
    if (s.leader === 0 && this.soft.leader !== 0) this.leaderlessSince = this.opts.env.now();
    this.soft = s;
    this.opts.onSoftState?.(s);
  }

  private maybeCompact(): void {
    const every = this.opts.compactEvery ?? 10_000;
    const tail = this.opts.logTail ?? 5_000;
    const st = this.node.status;
    // Up to what the store has committed: the snapshot it serves for the compacted part is read
    // from there (its applies may trail the core's by the ones still being committed).
    const applied = Math.min(st.applied, this.visibleApplied);
    if (applied - st.firstIndex + 1 >= every + tail) this.node.compact(applied - tail);
  }

  /** Forgets a proposal whose caller gave up (the entry may still apply). */
  abandon(index: number): void {
    this.proposals.delete(index);
  }
}
