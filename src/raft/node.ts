// Raft as a deterministic state machine: inputs are tick(), step(), propose(), readIndex() and the
// membership/transfer requests; output is a Ready batch (see types.ts for the contract). No I/O,
// no clock, no randomness of its own.
import { applyConfChange, encodeConf, majorityValue, quorum, type ConfChange } from './conf.ts';
import { RaftLog } from './log.ts';
import { mutations } from './mutations.ts';
import { Progress, ProgressState } from './progress.ts';
import {
  EntryType,
  MsgType,
  NONE,
  Role,
  type AppendMsg,
  type AppendRespMsg,
  type ConfState,
  type HardState,
  type HeartbeatMsg,
  type Message,
  type NodeId,
  type PersistedState,
  type ProposeResult,
  type RaftConfig,
  type ReadState,
  type Ready,
  type SnapshotChunk,
  type SnapshotMeta,
  type SnapshotMsg,
  type SnapshotRespMsg,
  type SoftState,
  type VoteMsg,
  type PreVoteMsg,
  type VoteRespMsg,
} from './types.ts';

/** Message without the fields the node fills in itself. */
type Outgoing = Message extends infer M ? (M extends Message ? Omit<M, 'from' | 'term'> & { term?: number } : never) : never;

interface PendingRead {
  ctx: Uint8Array;
  /** Who asked: this node, or a follower that forwarded the request. */
  from: NodeId;
  index: number;
  /** The first heartbeat round sent after the request arrived; a quorum must acknowledge it. */
  round: number;
}

interface Outstanding {
  lastEntry: number | undefined;
  snapshot: number | undefined;
  applyTo: number | undefined;
}

export const defaultRaftConfig = {
  electionTicks: 10,
  heartbeatTicks: 1,
  maxInflight: 256,
  maxMsgBytes: 1 << 20,
  snapshotChunkBytes: 256 << 10,
  snapshotWindow: 4,
  leaseReads: false,
  clockDriftTicks: 2,
  quietAfterTicks: 20,
} satisfies Partial<RaftConfig>;

/**
 * Quiet groups: a quiet leader heartbeats once per election timeout, and its followers (told by
 * the heartbeat's flag) wait this many election timeouts, instead of one, before they campaign or
 * grant a vote — so a lost heartbeat or two never starts an election. Failover of an idle group
 * takes that much longer; a busy group is never quiet.
 */
export const QUIET_FACTOR = 3;

export class RaftNode {
  readonly id: NodeId;
  private readonly cfg: RaftConfig;
  private readonly log: RaftLog;

  private term: number;
  private vote: NodeId;
  private role: Role = Role.Follower;
  private lead: NodeId = NONE;

  /** Local clock in ticks (lease arithmetic). */
  private ticks = 0;
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedTimeout = 0;
  /** Right after boot we may have acknowledged a leader we no longer remember: honour its lease. */
  private bootLease = true;
  /** Leader: heartbeats are slow (idle group). Follower: the leader said so in its last heartbeat. */
  private quiet = false;
  /** Leader: consecutive ticks with nothing to replicate and every replica caught up. */
  private idleTicks = 0;

  private votes = new Map<NodeId, boolean>();
  private prs = new Map<NodeId, Progress>();
  private leadTransferee: NodeId = NONE;
  private transferElapsed = 0;
  private pendingConfIndex = 0;
  /** RaftConfig.blankStart, until this replica has caught up with its group (see `blank`). */
  private blankNow: boolean;
  /** An index through which our log matches a leader's (see `blank`): blank ends once it is durable. */
  private blankUntil = 0;

  // Reads.
  private round = 0;
  private roundSentAt = new Map<number, number>();
  private roundPending = false;
  private leaseUntil = -1;
  private reads: PendingRead[] = [];
  /** Reads that arrived before this leader committed an entry of its term. */
  private readsAwaitingCommit: { ctx: Uint8Array; from: NodeId; lease: boolean }[] = [];

  // Snapshots: the incoming transfer, and the id of the next outgoing one.
  private snapRecv: { from: NodeId; term: number; transfer: number; meta: SnapshotMeta; nextSeq: number } | undefined;
  private nextTransfer = 1;

  // Output being gathered for the next Ready.
  private msgs: Message[] = [];
  private readStates: ReadState[] = [];
  private failedReads: Uint8Array[] = [];
  private chunks: SnapshotChunk[] = [];
  private pendingSnapshot: SnapshotMeta | undefined;
  private pendingCompaction: SnapshotMeta | undefined;
  /** Peers to send appends to at the next flush; true = send even if there are no new entries. */
  private dirty = new Map<NodeId, boolean>();
  private prevHard: HardState;
  private prevSoft: SoftState;
  private outstanding: Outstanding | undefined;

  constructor(cfg: RaftConfig, persisted: PersistedState) {
    this.cfg = cfg;
    this.id = cfg.id;
    const { hardState, base, entries, applied } = persisted;
    this.log = new RaftLog(base, entries, hardState.commit, applied);
    this.term = hardState.term;
    this.vote = hardState.vote;
    this.blankNow = cfg.blankStart === true;
    this.prevHard = { term: this.term, vote: this.vote, commit: this.log.committed };
    this.prevSoft = this.softState();
    this.resetElection();
  }

  // ---- Inputs -----------------------------------------------------------------------------------

  tick(): void {
    this.ticks++;
    if (this.role === Role.Leader) this.tickLeader();
    else this.tickElection();
  }

  step(m: Message): void {
    if (m.term > this.term) {
      const isVoteRequest = m.type === MsgType.Vote || m.type === MsgType.PreVote;
      const forced = m.type === MsgType.Vote && m.transfer;
      // Leader stickiness: while we hear from a live leader, a campaign is a disruption (or a
      // partitioned node coming back) and is ignored. This is also what makes leases safe.
      if (isVoteRequest && !forced && this.inLease()) return;
      if (m.type === MsgType.PreVote) {
        // A pre-vote never changes our term.
      } else if (m.type === MsgType.PreVoteResp && !m.reject) {
        // Granted pre-vote for the term we would campaign in.
      } else {
        const fromLeader = m.type === MsgType.Append || m.type === MsgType.Heartbeat || m.type === MsgType.Snapshot;
        this.becomeFollower(m.term, fromLeader ? m.from : NONE);
      }
    } else if (m.term < this.term) {
      if (m.type === MsgType.Append || m.type === MsgType.Heartbeat) {
        // A stale leader (e.g. back from a partition) learns our term and steps down.
        this.send({ type: MsgType.AppendResp, to: m.from, index: 0, reject: true, hintIndex: 0, hintTerm: 0 });
      } else if (m.type === MsgType.PreVote) {
        this.send({ type: MsgType.PreVoteResp, to: m.from, reject: true });
      }
      return;
    }

    if (m.type === MsgType.Vote || m.type === MsgType.PreVote) {
      this.handleVoteRequest(m);
      return;
    }
    switch (this.role) {
      case Role.Leader:
        this.stepLeader(m);
        break;
      case Role.Candidate:
      case Role.PreCandidate:
        this.stepCandidate(m);
        break;
      case Role.Follower:
        this.stepFollower(m);
        break;
    }
  }

  propose(data: Uint8Array): ProposeResult {
    const refused = this.refuseProposal();
    if (refused) return refused;
    const index = this.appendEntry(EntryType.Normal, data);
    return { ok: true, index, term: this.term };
  }

  /**
   * Single-server membership change. Allowed only once an entry of this leader's term is committed
   * and no other change is pending (the fix to the original single-server algorithm).
   */
  proposeConf(change: ConfChange): ProposeResult {
    const refused = this.refuseProposal();
    if (refused) return refused;
    if (this.log.term(this.log.committed) !== this.term || this.pendingConfIndex > this.log.committed) {
      return { ok: false, error: 'conf-change-pending', leader: this.lead };
    }
    const next = applyConfChange(this.log.conf(), change);
    if (typeof next === 'string') return { ok: false, error: 'invalid-conf-change', leader: this.lead, reason: next };
    // A voter that said it is blank (its disk replaced, not caught up since) may lack committed
    // entries it acknowledged before: with one voter fewer, or one more to count, its vote may
    // be needed by every candidate, and it refuses every candidate holding entries (docs/raft.md,
    // the operator's rule 3, now enforced where the leader can see it). Removing that voter
    // itself is allowed: its vote is then never needed, and a replica lost for good stays removable.
    const blankVoter = next.voters.find((v) => v !== this.id && this.prs.get(v)?.blank === true);
    if (blankVoter !== undefined) {
      const reason = `voter ${blankVoter} is blank (its data directory was replaced and it has not caught up with a leader since): no membership change until it has, or remove ${blankVoter} itself`;
      return { ok: false, error: 'invalid-conf-change', leader: this.lead, reason };
    }
    if (change.type === 'remove' && this.log.conf().voters.includes(change.node)) {
      // Fewer voters are left to elect a leader: a quorum of them must hold our commit point. One
      // that never caught up may still be blank (RaftConfig.blankStart) and refuse every candidate
      // holding entries; a group that needed its vote would never elect a leader again.
      const held = (v: NodeId): number => (v === this.id ? this.log.stable : (this.prs.get(v)?.match ?? 0));
      const caughtUp = next.voters.filter((v) => held(v) >= this.log.committed);
      if (caughtUp.length < quorum(next.voters.length)) {
        // "is behind", as for a promotion: the membership executor retries until it caught up.
        const behind = next.voters.find((v) => !caughtUp.includes(v))!;
        const reason = `removing ${change.node} needs ${quorum(next.voters.length)} of voters ${next.voters.join(', ')} at the commit point ${this.log.committed}; ${behind} is behind (${held(behind)} < ${this.log.committed})`;
        return { ok: false, error: 'invalid-conf-change', leader: this.lead, reason };
      }
    }
    if (change.type === 'promote') {
      const match = this.prs.get(change.node)?.match ?? 0;
      if (match < this.log.committed) {
        return { ok: false, error: 'invalid-conf-change', leader: this.lead, reason: `learner ${change.node} is behind (${match} < ${this.log.committed})` };
      }
    }
    const index = this.appendEntry(EntryType.Conf, encodeConf(next));
    this.pendingConfIndex = index;
    this.syncProgressWithConf();
    return { ok: true, index, term: this.term };
  }

  /**
   * Asks for a linearizable read point. The answer comes as a ReadState (serve once applied >= index)
   * or a failed read in a later Ready; it may also never come (lost messages): callers time out.
   * `lease` lets a leader with a valid lease answer without a heartbeat round. Returns where the
   * read point comes from: here (a leader), asked (a ReadIndex to the leader, in the next Ready's
   * messages: the leader picks the index when it gets it), or failed (no leader known).
   */
  readIndex(ctx: Uint8Array, opts: { lease?: boolean } = {}): 'here' | 'asked' | 'failed' {
    if (this.role === Role.Leader) {
      this.handleReadRequest(ctx, this.id, opts.lease ?? false);
      return 'here';
    } else if (this.role === Role.Follower && this.lead !== NONE) {
      this.send({ type: MsgType.ReadIndex, to: this.lead, ctx });
      return 'asked';
    }
    this.failedReads.push(ctx);
    return 'failed';
  }

  transferLeadership(to: NodeId): boolean {
    if (this.role !== Role.Leader || to === this.id || !this.log.conf().voters.includes(to)) return false;
    if (this.leadTransferee === to) return true;
    this.wake();
    this.leadTransferee = to;
    this.transferElapsed = 0;
    this.leaseUntil = -1; // the new leader may serve writes before our lease would end
    const pr = this.prs.get(to)!;
    if (pr.match === this.log.lastIndex()) this.send({ type: MsgType.TimeoutNow, to });
    else this.dirty.set(to, false);
    return true;
  }

  /**
   * Whom a leader that is leaving (a graceful stop) should hand leadership to; undefined when not
   * leader or no other voter exists. First a voter holding our whole log that answered within the
   * last few heartbeats (breakTicks: it can take over at once, and is evidently reachable), among
   * them the one heard from without a break for longest: a replica that came back moments ago (a rolling
   * restart) may not be reachable from the other replicas yet — their links to it can still be
   * waiting out a reconnect backoff — and a leader they cannot answer gets no votes or acks. Then a
   * recently active voter with the highest match (the transfer catches it up first), then, as
   * before, the highest match: the transfer may still land if it answers again.
   */
  transferTarget(): NodeId | undefined {
    if (this.role !== Role.Leader) return undefined;
    const last = this.log.lastIndex();
    // Answered within a few heartbeats, not the quiet election window (three quiet heartbeats).
    const window = this.breakTicks();
    const ranked = this.log
      .conf()
      .voters.filter((v) => v !== this.id && this.prs.has(v))
      .map((id) => {
        const pr = this.prs.get(id)!;
        const recent = this.ticks - pr.heardAt <= window;
        return { id, match: pr.match, recent, ready: recent && pr.match === last, since: pr.heardSince };
      });
    ranked.sort((a, b) => Number(b.ready) - Number(a.ready) || Number(b.recent) - Number(a.recent) || b.match - a.match || earlier(a.since, b.since) || a.id - b.id);
    return ranked[0]?.id;
  }

  /** Folds the log up to `index` (already applied) into the state machine's image. */
  compact(index: number): void {
    if (index <= this.log.base.index || index > this.log.applied) return;
    const meta: SnapshotMeta = { index, term: this.log.term(index)!, conf: this.log.confAt(index) };
    this.log.compact(meta);
    this.pendingCompaction = meta;
  }

  // ---- Output -----------------------------------------------------------------------------------

  hasReady(): boolean {
    return (
      this.msgs.length > 0 ||
      this.dirty.size > 0 ||
      this.roundPending ||
      this.log.unstableFrom <= this.log.lastIndex() ||
      !sameHard(this.hardState(), this.prevHard) ||
      !sameSoft(this.softState(), this.prevSoft) ||
      this.pendingSnapshot !== undefined ||
      this.pendingCompaction !== undefined ||
      this.chunks.length > 0 ||
      this.readStates.length > 0 ||
      this.failedReads.length > 0 ||
      this.log.applied < Math.min(this.log.committed, this.log.stable)
    );
  }

  ready(): Ready {
    if (this.outstanding) throw new Error('raft: ready() called again before advance()');
    this.flush();
    const hard = this.hardState();
    const soft = this.softState();
    const snapshot = this.pendingSnapshot;
    const rd: Ready = {
      softState: sameSoft(soft, this.prevSoft) ? undefined : soft,
      hardState: sameHard(hard, this.prevHard) ? undefined : hard,
      snapshotChunks: this.chunks,
      snapshot,
      compaction: snapshot ? undefined : this.pendingCompaction,
      entries: this.log.unstableEntries(),
      messages: this.msgs,
      committedEntries: snapshot ? [] : this.log.nextCommitted(),
      readStates: this.readStates,
      failedReads: this.failedReads,
    };
    this.outstanding = {
      lastEntry: rd.entries.at(-1)?.index,
      snapshot: snapshot?.index,
      applyTo: rd.committedEntries.at(-1)?.index,
    };
    this.log.unstableFrom = this.log.lastIndex() + 1;
    this.log.truncatedSinceReady = Infinity;
    this.prevHard = hard;
    this.prevSoft = soft;
    this.msgs = [];
    this.readStates = [];
    this.failedReads = [];
    this.chunks = [];
    this.pendingSnapshot = undefined;
    this.pendingCompaction = undefined;
    return rd;
  }

  /** The Ready is persisted, its messages sent and its committed entries applied. */
  advance(_rd: Ready): void {
    const o = this.outstanding;
    if (!o) throw new Error('raft: advance() without an outstanding Ready');
    this.outstanding = undefined;
    const log = this.log;
    if (o.snapshot !== undefined && log.base.index === o.snapshot) {
      log.stable = Math.max(log.stable, o.snapshot);
      log.applied = Math.max(log.applied, o.snapshot);
    }
    if (o.lastEntry !== undefined) {
      log.stable = Math.max(log.stable, Math.min(o.lastEntry, log.truncatedSinceReady - 1, log.lastIndex()));
    }
    if (o.applyTo !== undefined) log.applied = Math.max(log.applied, o.applyTo);
    if (this.role === Role.Leader) this.maybeCommit();
  }

  get status() {
    return {
      id: this.id,
      role: this.role,
      term: this.term,
      vote: this.vote,
      leader: this.lead,
      commit: this.log.committed,
      applied: this.log.applied,
      stable: this.log.stable,
      firstIndex: this.log.firstIndex(),
      lastIndex: this.log.lastIndex(),
      lastTerm: this.log.lastTerm(),
      conf: this.log.conf(),
      transferring: this.leadTransferee,
      quiet: this.quiet,
      /** Still blank (`blank`): a replaced replica that has not caught up. */
      blank: this.blank,
      progress:
        this.role === Role.Leader
          ? [...this.prs].map(([id, pr]) => ({ id, match: pr.match, next: pr.next, state: pr.state, active: pr.recentActive, blank: pr.blank }))
          : [],
    };
  }

  /** The configuration in force (changes when a configuration entry is appended or rolled back). */
  get conf(): ConfState {
    return this.log.conf();
  }

  /** Quiet (see QUIET_FACTOR): a leader heartbeating slowly, or a follower told so by its leader. */
  get isQuiet(): boolean {
    return this.quiet;
  }

  get appliedIndex(): number {
    return this.log.applied;
  }

  get commitIndex(): number {
    return this.log.committed;
  }

  /**
   * Still blank (RaftConfig.blankStart): the shell keeps the store's blank mark while this is true
   * and removes it once it turns false. It ends once this replica's durable log matches a leader's
   * through an entry of the leader's term and through its commit index: the first holds every entry
   * committed before that leader's election, the second every entry of its term committed so far —
   * so everything this replica acknowledged before its disk was lost, if it was committed. Or when
   * it takes part in a new group's first election (votes for, or wins as, a candidate holding
   * nothing: there is nothing it could lack).
   */
  get blank(): boolean {
    if (this.blankNow && this.blankUntil > 0 && this.log.stable >= this.blankUntil && !mutations.blankClearsAtFirstEntry) this.blankNow = false;
    if (this.blankNow && mutations.blankClearsAtFirstEntry && this.log.lastIndex() > 0) this.blankNow = false;
    return this.blankNow;
  }

  /** Entry i of the in-memory log (for the I/O shell's tests and the simulator's checks). */
  entryAt(i: number) {
    return this.log.entry(i);
  }

  // ---- Roles ------------------------------------------------------------------------------------

  private becomeFollower(term: number, lead: NodeId): void {
    if (this.role === Role.Leader) this.stepDownCleanup();
    if (term !== this.term) {
      this.term = term;
      this.vote = NONE;
    }
    this.role = Role.Follower;
    this.lead = lead;
    this.leadTransferee = NONE;
    this.quiet = false; // until this term's leader says otherwise
    this.resetElection();
  }

  private campaign(kind: 'pre' | 'real' | 'transfer'): void {
    if (!this.promotable()) return;
    let voteTerm: number;
    if (kind === 'pre') {
      this.role = Role.PreCandidate;
      voteTerm = this.term + 1;
    } else {
      this.term += 1;
      this.vote = this.id;
      this.role = Role.Candidate;
      voteTerm = this.term;
    }
    this.lead = NONE;
    this.quiet = false;
    this.resetElection();
    this.votes = new Map([[this.id, true]]);
    if (this.tally() === 'won') {
      if (kind === 'pre') this.campaign('real');
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const v of this.log.conf().voters) {
      if (v === this.id) continue;
      if (kind === 'pre') this.send({ type: MsgType.PreVote, to: v, term: voteTerm, lastIndex, lastTerm });
      else this.send({ type: MsgType.Vote, to: v, term: voteTerm, lastIndex, lastTerm, transfer: kind === 'transfer' });
    }
  }

  private becomeLeader(): void {
    // Elected holding nothing (by blank voters: a new group), or by transfer once caught up.
    this.blankNow = false;
    this.role = Role.Leader;
    this.lead = this.id;
    this.leadTransferee = NONE;
    this.heartbeatElapsed = 0;
    this.electionElapsed = 0;
    this.quiet = false;
    this.idleTicks = 0;
    this.leaseUntil = -1;
    this.prs = new Map();
    this.syncProgressWithConf();
    // The no-op: entries of earlier terms can only commit through an entry of this term. If no
    // entry of our log is a configuration entry (the configuration in force is the bootstrap one,
    // or came with the log base), the no-op restates the configuration instead: a replica that
    // catches up by entries (one that joined empty, with --join) learns it only from the log,
    // never from our base. It changes nothing, so it is safe under the single-server rule; see
    // "Membership" in docs/raft.md.
    const noop = this.log.holdsConfEntry()
      ? this.appendEntry(EntryType.Normal, new Uint8Array(0))
      : this.appendEntry(EntryType.Conf, encodeConf(this.log.conf()));
    // No membership change until this term has committed something (single-server change fix).
    this.pendingConfIndex = noop;
  }

  private stepDownCleanup(): void {
    for (const r of this.reads) this.answerRead(r.ctx, r.from, -1);
    for (const r of this.readsAwaitingCommit) this.answerRead(r.ctx, r.from, -1);
    this.reads = [];
    this.readsAwaitingCommit = [];
    for (const pr of this.prs.values()) this.endSnapshotSend(pr);
    this.prs = new Map();
    this.dirty.clear();
    this.roundSentAt.clear();
    this.leaseUntil = -1;
  }

  private resetElection(): void {
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.drawTimeout();
    this.votes = new Map();
  }

  /** A random election timeout in [T, 2T), T being one election timeout (QUIET_FACTOR when quiet). */
  private drawTimeout(): void {
    const t = this.electionWindow();
    this.randomizedTimeout = t + Math.floor(this.cfg.random() * t);
  }

  /** How long silence from the leader is normal: also the CheckQuorum window and the stickiness. */
  private electionWindow(): number {
    return this.quiet ? QUIET_FACTOR * this.cfg.electionTicks : this.cfg.electionTicks;
  }

  /**
   * A silence longer than this before a peer's answer breaks its run of answers (Progress.heard,
   * transferTarget). Not the election window: quiet, that is three quiet heartbeats, so a follower
   * restarted in an idle group went unnoticed. Two missed quiet heartbeats are a break, one is not
   * (a quiet replica ticks in bursts of half an election timeout: replica.ts).
   */
  private breakTicks(): number {
    return this.quiet ? 2 * this.cfg.electionTicks : this.cfg.electionTicks;
  }

  private promotable(): boolean {
    if (this.log.conf().voters.includes(this.id)) return true;
    // Removed by a configuration entry not yet committed (it takes effect on append), a voter of the
    // one before it still campaigns: its log may be the only one holding that entry, and without it
    // the others cannot win its vote nor commit the removal (found by seed 3300005768, 5 nodes;
    // Raft dissertation 4.2.2). Its own vote does not count (tally counts the latest voters), and as
    // leader it steps down once the entry commits.
    const last = this.log.lastConfIndex();
    return this.log.committed < last && this.log.confAt(last - 1).voters.includes(this.id);
  }

  private inLease(): boolean {
    return (this.lead !== NONE || this.bootLease) && this.electionElapsed < this.electionWindow();
  }

  // ---- Ticks ------------------------------------------------------------------------------------

  private tickElection(): void {
    this.electionElapsed++;
    if (this.bootLease && this.electionElapsed >= this.cfg.electionTicks) this.bootLease = false;
    if (this.promotable() && this.electionElapsed >= this.randomizedTimeout && !this.blankHolding()) this.campaign('pre');
  }

  /**
   * A blank replica holding entries does not campaign: its log may be a prefix of what it held
   * before its disk was lost, and a lagging voter could elect it without entries it had helped
   * commit. Holding nothing, it may (a new group's first election; any voter holding entries
   * refuses it anyway). A transfer is allowed: the leader sends it only to a replica as far as
   * its own log.
   */
  private blankHolding(): boolean {
    return this.blank && this.log.lastIndex() > 0 && !mutations.blankClearsAtFirstEntry;
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.leadTransferee !== NONE && ++this.transferElapsed >= this.cfg.electionTicks) {
      this.leadTransferee = NONE; // the target did not take over in time: resume normal service
    }
    if (this.electionElapsed >= this.electionWindow()) {
      this.electionElapsed = 0;
      if (!this.quorumActive()) {
        this.becomeFollower(this.term, NONE); // CheckQuorum: we may be on the minority side
        return;
      }
      for (const pr of this.prs.values()) pr.recentActive = false;
    }
    const wasQuiet = this.quiet;
    this.updateQuiet();
    // Going quiet is announced at once: a follower still on the short timeout must not wait a
    // whole quiet interval for the next heartbeat.
    const interval = this.quiet ? this.cfg.electionTicks : this.cfg.heartbeatTicks;
    if (this.heartbeatElapsed >= interval || this.quiet !== wasQuiet) this.broadcastHeartbeat();
    for (const [id, pr] of this.prs) {
      const s = pr.snapshot;
      if (s && ++s.idleTicks >= Math.max(2, this.cfg.electionTicks >> 1)) {
        // No acknowledgement for a while: resend from the last acknowledged chunk.
        s.nextSeq = s.ackedSeq + 1;
        s.cursor = s.ackedCursor;
        s.sentAll = false;
        s.idleTicks = 0;
        this.dirty.set(id, false);
      }
    }
  }

  /** Counts idle ticks; enough of them make the leader quiet, any work wakes it. */
  private updateQuiet(): void {
    if (this.cfg.quietAfterTicks <= 0 || !this.idle()) {
      this.wake();
    } else if (!this.quiet && ++this.idleTicks >= this.cfg.quietAfterTicks) {
      this.quiet = true;
    }
  }

  /** Nothing to replicate: everything committed, every replica has it, no transfer under way. */
  private idle(): boolean {
    const last = this.log.lastIndex();
    if (this.leadTransferee !== NONE || this.log.committed !== last || this.readsAwaitingCommit.length > 0) return false;
    for (const pr of this.prs.values()) if (pr.match !== last || pr.snapshot) return false;
    return true;
  }

  private wake(): void {
    this.quiet = false;
    this.idleTicks = 0;
  }

  private quorumActive(): boolean {
    const voters = this.log.conf().voters;
    const active = voters.filter((v) => v === this.id || this.prs.get(v)?.recentActive).length;
    return active >= Math.floor(voters.length / 2) + 1;
  }

  // ---- Votes ------------------------------------------------------------------------------------

  private handleVoteRequest(m: VoteMsg | PreVoteMsg): void {
    const pre = m.type === MsgType.PreVote;
    // A node that knows no configuration started empty outside one (--join): a replica being added,
    // or a voter that lost its disk and with it the vote it may already have cast in this term. It
    // votes only once the leader's log or snapshot gave it a configuration (a learner has one
    // before it is promoted, so an addition never needs its vote earlier).
    const conf = this.log.conf();
    const knowsConf = conf.voters.length > 0 || conf.learners.length > 0;
    // Blank (RaftConfig.blankStart, not caught up since its store was created empty): its vote may
    // be one it cast before its disk was lost, and its log may lack entries it acknowledged; with a
    // lagging peer's vote it could elect a leader that lacks committed entries (an outside test
    // lost 10 acknowledged writes so; the simulator more, after the first entry). It votes
    // only for candidates holding nothing either; once it caught up (`blank`), as any voter.
    const blankVoter = this.blank && m.lastIndex > 0;
    const canVote = knowsConf && !blankVoter && (this.vote === m.from || (this.vote === NONE && this.lead === NONE) || (pre && m.term > this.term));
    const upToDate = mutations.skipUpToDateCheck || this.log.isUpToDate(m.lastIndex, m.lastTerm);
    const type = pre ? MsgType.PreVoteResp : MsgType.VoteResp;
    if (canVote && upToDate) {
      this.send({ type, to: m.from, term: m.term, reject: false });
      if (!pre) {
        this.electionElapsed = 0;
        this.vote = m.from;
        // Only a candidate holding nothing gets a blank voter's vote: a new group's first election.
        this.blankNow = false;
      }
    } else {
      this.send({ type, to: m.from, reject: true });
    }
  }

  private tally(): 'won' | 'lost' | 'pending' {
    const voters = this.log.conf().voters;
    const q = Math.floor(voters.length / 2) + 1;
    let granted = 0;
    let rejected = 0;
    for (const v of voters) {
      const g = this.votes.get(v);
      if (g === true) granted++;
      else if (g === false) rejected++;
    }
    if (granted >= q) return 'won';
    if (rejected >= q) return 'lost';
    return 'pending';
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case MsgType.Append:
      case MsgType.Heartbeat:
      case MsgType.Snapshot:
        this.becomeFollower(this.term, m.from); // someone won this term
        this.stepFollower(m);
        return;
      case MsgType.PreVoteResp:
      case MsgType.VoteResp:
        this.handleVoteResponse(m);
        return;
      case MsgType.ReadIndexResp:
        this.failedReads.push(m.ctx);
        return;
      default:
        return;
    }
  }

  private handleVoteResponse(m: VoteRespMsg): void {
    const expected = this.role === Role.PreCandidate ? MsgType.PreVoteResp : MsgType.VoteResp;
    if (m.type !== expected) return;
    this.votes.set(m.from, !m.reject);
    const result = this.tally();
    if (result === 'won') {
      if (this.role === Role.PreCandidate) this.campaign('real');
      else this.becomeLeader();
    } else if (result === 'lost') {
      this.becomeFollower(this.term, NONE);
    }
  }

  // ---- Follower -----------------------------------------------------------------------------------

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MsgType.Append:
        this.heardFromLeader(m.from, false);
        this.handleAppend(m);
        return;
      case MsgType.Heartbeat:
        this.heardFromLeader(m.from, m.quiet === true);
        this.handleHeartbeat(m);
        return;
      case MsgType.Snapshot:
        this.heardFromLeader(m.from, false);
        this.handleSnapshot(m);
        return;
      case MsgType.TimeoutNow:
        this.campaign('transfer');
        return;
      case MsgType.ReadIndex:
        this.send({ type: MsgType.ReadIndexResp, to: m.from, ctx: m.ctx, index: -1 });
        return;
      case MsgType.ReadIndexResp:
        if (m.index < 0) this.failedReads.push(m.ctx);
        else this.readStates.push({ ctx: m.ctx, index: m.index });
        return;
      default:
        return;
    }
  }

  private heardFromLeader(from: NodeId, quiet: boolean): void {
    this.lead = from;
    this.electionElapsed = 0;
    if (quiet !== this.quiet) {
      this.quiet = quiet;
      this.drawTimeout();
    }
  }

  private handleAppend(m: AppendMsg): void {
    const log = this.log;
    if (m.prevIndex < log.committed) {
      // Everything up to our commit index matches any leader's log: tell it where we are.
      this.send({ type: MsgType.AppendResp, to: m.from, index: log.committed, reject: false, hintIndex: 0, hintTerm: 0 });
      return;
    }
    if (log.matchTerm(m.prevIndex, m.prevTerm)) {
      const lastNew = log.merge(m.prevIndex, m.entries);
      log.commitTo(Math.min(m.commit, lastNew));
      // Our log now matches the leader's through an entry of its term and through its commit
      // index: once that is durable here, we hold all we may have held before (`blank`).
      if (this.blankNow && m.commit <= lastNew && log.term(lastNew) === m.term) this.blankUntil = Math.max(this.blankUntil, lastNew);
      this.send({ type: MsgType.AppendResp, to: m.from, index: lastNew, reject: false, hintIndex: 0, hintTerm: 0 });
      return;
    }
    const hintIndex = log.findConflictByTerm(Math.min(m.prevIndex, log.lastIndex()), m.prevTerm);
    this.send({
      type: MsgType.AppendResp,
      to: m.from,
      index: m.prevIndex,
      reject: true,
      hintIndex,
      hintTerm: log.term(hintIndex) ?? 0,
    });
  }

  private handleHeartbeat(m: HeartbeatMsg): void {
    // The leader sends min(our match, its commit), so this prefix of our log matches its log.
    const last = this.log.lastIndex();
    this.log.commitTo(Math.min(m.commit, last));
    if (m.commit > last) {
      // The leader holds an acknowledgement of entries we do not have: our log was lost (wiped
      // disk). Tell it where our log really ends, as a rejection hint.
      this.send({ type: MsgType.AppendResp, to: m.from, index: m.commit, reject: true, hintIndex: last, hintTerm: this.log.lastTerm() });
    }
    this.send({ type: MsgType.HeartbeatResp, to: m.from, round: m.round });
  }

  private handleSnapshot(m: SnapshotMsg): void {
    const { meta } = m;
    const log = this.log;
    const ack = (seq: number, done: boolean): void =>
      this.send({ type: MsgType.SnapshotResp, to: m.from, meta, transfer: m.transfer, seq, done });
    if (meta.index <= log.committed || log.matchTerm(meta.index, meta.term)) {
      // We already have everything the snapshot covers (a matching entry keeps the log after it).
      log.commitTo(Math.max(log.committed, Math.min(meta.index, log.lastIndex())));
      this.snapRecv = undefined;
      ack(m.seq, true);
      return;
    }
    // An image completed here waits for the next Ready to install it, and the storage stages one
    // image at a time: a chunk of another transfer in the same Ready would replace the staged image
    // before its install (seed 1126983932: "no complete staged image"). Dropped unanswered; the
    // leader sends it again once the transfer has been idle a while.
    if (this.pendingSnapshot !== undefined) return;
    // A chunk belongs to the transfer in progress only if sender, term and transfer id all match:
    // the same image sent again (a restarted leader, a new attempt) is a new transfer from seq 0.
    const rs = this.snapRecv;
    const same = rs !== undefined && rs.from === m.from && rs.term === m.term && rs.transfer === m.transfer;
    if (same && m.seq < rs.nextSeq) {
      ack(rs.nextSeq - 1, false); // a duplicate
      return;
    }
    if (m.seq === 0) {
      this.snapRecv = { from: m.from, term: m.term, transfer: m.transfer, meta, nextSeq: 0 };
    } else if (!same || m.seq !== rs.nextSeq) {
      ack(same ? rs.nextSeq - 1 : -1, false);
      return;
    }
    this.chunks.push({ meta, seq: m.seq, data: m.data, last: m.last });
    this.snapRecv!.nextSeq = m.seq + 1;
    if (m.last) {
      log.restore(meta);
      this.pendingSnapshot = meta;
      this.pendingCompaction = undefined;
      this.snapRecv = undefined;
    }
    ack(m.seq, m.last);
  }

  // ---- Leader -----------------------------------------------------------------------------------

  private stepLeader(m: Message): void {
    switch (m.type) {
      case MsgType.AppendResp:
        this.handleAppendResp(m);
        return;
      case MsgType.HeartbeatResp: {
        const pr = this.prs.get(m.from);
        if (!pr) return;
        pr.heard(this.ticks, this.breakTicks());
        pr.blank = m.blank === true;
        pr.ackedRound = Math.max(pr.ackedRound, m.round);
        pr.probeSent = false;
        if (pr.state === ProgressState.Replicate && pr.windowFull(this.cfg.maxInflight)) pr.inflight.shift();
        // A follower still blank whose match is already our last index gets no append otherwise
        // (it restarted with its mark kept, its log whole): an empty one tells it our commit
        // against its log, which ends its blankness (`blank`); without it, it stayed blank for good
        // in an idle group, and we refused every membership change (found in review).
        if (pr.match < this.log.lastIndex() || pr.appendAfterSnapshot || m.blank === true) this.dirty.set(m.from, true);
        this.releaseReads();
        return;
      }
      case MsgType.SnapshotResp:
        this.handleSnapshotResp(m);
        return;
      case MsgType.ReadIndex:
        this.handleReadRequest(m.ctx, m.from, false);
        return;
      default:
        return;
    }
  }

  private handleAppendResp(m: AppendRespMsg): void {
    const pr = this.prs.get(m.from);
    if (!pr) return;
    pr.heard(this.ticks, this.breakTicks());
    pr.blank = m.blank === true;
    pr.appendAfterSnapshot = false;
    if (m.reject) {
      if (m.hintIndex < pr.match) {
        // A follower's log never ends below what it acknowledged unless it lost its log (a wiped
        // or replaced disk): believe it, or we would probe above its real log forever. (A delayed
        // old rejection can also land here; that only costs a re-probe, never safety.)
        this.endSnapshotSend(pr);
        pr.match = m.hintIndex;
        pr.next = m.hintIndex + 1;
        pr.becomeProbe();
        this.dirty.set(m.from, false);
        return;
      }
      if (pr.state === ProgressState.Snapshot) return;
      // Stale rejections (answers to appends we have since moved past) change nothing.
      if (pr.state === ProgressState.Replicate ? m.index <= pr.match : m.index !== pr.next - 1) return;
      let next = m.hintIndex;
      if (m.hintTerm > 0) next = this.log.findConflictByTerm(m.hintIndex, m.hintTerm);
      pr.next = Math.max(Math.min(m.index, next + 1), pr.match + 1);
      pr.becomeProbe();
      this.dirty.set(m.from, false);
      return;
    }
    const advanced = pr.ack(m.index);
    if (pr.state === ProgressState.Snapshot) {
      if (pr.match < pr.snapshot!.meta.index) return;
      this.endSnapshotSend(pr);
      pr.becomeProbe();
    }
    if (pr.state === ProgressState.Probe) pr.becomeReplicate();
    this.dirty.set(m.from, false);
    if (advanced) {
      this.maybeCommit();
      if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
        this.send({ type: MsgType.TimeoutNow, to: m.from });
      }
    }
  }

  private handleSnapshotResp(m: SnapshotRespMsg): void {
    const pr = this.prs.get(m.from);
    if (!pr) return;
    pr.heard(this.ticks, this.breakTicks());
    const s = pr.snapshot;
    if (pr.state !== ProgressState.Snapshot || !s || s.transfer !== m.transfer) return;
    if (m.done) {
      pr.ack(s.meta.index);
      this.endSnapshotSend(pr);
      pr.becomeProbe();
      // An append even with nothing after the image: it tells the follower our commit index
      // against its log, which a blank one needs to stop being blank (`blank`). Repeated at each
      // heartbeat answer until an append is answered: lost, it would never be sent again.
      this.dirty.set(m.from, true);
      pr.appendAfterSnapshot = true;
      this.maybeCommit();
      return;
    }
    if (m.seq < 0) {
      // The follower has nothing staged (it restarted): start the image again.
      Object.assign(s, { nextSeq: 0, cursor: null, sentAll: false, ackedSeq: -1, ackedCursor: null });
      s.cursorAfter.clear();
    } else if (m.seq > s.ackedSeq && s.cursorAfter.has(m.seq)) {
      s.ackedSeq = m.seq;
      s.ackedCursor = s.cursorAfter.get(m.seq)!;
      for (const k of s.cursorAfter.keys()) if (k <= m.seq) s.cursorAfter.delete(k);
      s.idleTicks = 0;
    }
    this.dirty.set(m.from, false);
  }

  private maybeCommit(): void {
    const conf = this.log.conf();
    const selfMatch = mutations.ackBeforePersist ? this.log.lastIndex() : this.log.stable;
    const matches = conf.voters.map((v) => (v === this.id ? selfMatch : (this.prs.get(v)?.match ?? 0)));
    const q = majorityValue(matches);
    if (q <= this.log.committed) return;
    // Figure 8: only an entry of the current term is committed by counting replicas.
    if (!mutations.countOldTermEntries && this.log.term(q) !== this.term) return;
    this.log.commitTo(q);
    this.afterCommit();
  }

  private afterCommit(): void {
    if (this.log.term(this.log.committed) === this.term && this.readsAwaitingCommit.length > 0) {
      const waiting = this.readsAwaitingCommit;
      this.readsAwaitingCommit = [];
      for (const r of waiting) this.handleReadRequest(r.ctx, r.from, r.lease);
    }
    // Followers learn the new commit index with the next append or heartbeat, not from a message
    // of its own: under light load that message doubled the work per write (an append, an
    // acknowledgement and a separate apply commit on every follower). A follower whose read waits
    // for the index is told at once (answerRead).
    const conf = this.log.conf();
    if (!conf.voters.includes(this.id) && this.log.committed >= this.log.lastConfIndex()) {
      this.becomeFollower(this.term, NONE); // we were removed and the removal is committed
    }
  }

  private refuseProposal(): ProposeResult | undefined {
    if (this.role !== Role.Leader) return { ok: false, error: 'not-leader', leader: this.lead };
    if (this.leadTransferee !== NONE) return { ok: false, error: 'transferring', leader: this.lead };
    return undefined;
  }

  private appendEntry(type: EntryType, data: Uint8Array): number {
    const index = this.log.lastIndex() + 1;
    this.wake();
    this.log.append({ index, term: this.term, type, data });
    for (const id of this.prs.keys()) if (!this.dirty.has(id)) this.dirty.set(id, false);
    return index;
  }

  /** Progress entries follow the configuration in force (which changes on append). */
  private syncProgressWithConf(): void {
    const conf: ConfState = this.log.conf();
    const members = new Set([...conf.voters, ...conf.learners]);
    for (const [id, pr] of this.prs) {
      if (!members.has(id)) {
        this.endSnapshotSend(pr);
        this.prs.delete(id);
        this.dirty.delete(id);
        if (this.leadTransferee === id) this.leadTransferee = NONE;
      }
    }
    for (const id of members) {
      if (id !== this.id && !this.prs.has(id)) {
        this.prs.set(id, new Progress(this.log.lastIndex() + 1));
        this.dirty.set(id, false);
      }
    }
  }

  // ---- Reads ------------------------------------------------------------------------------------

  private handleReadRequest(ctx: Uint8Array, from: NodeId, lease: boolean): void {
    if (this.log.term(this.log.committed) !== this.term) {
      // Our commit index may lag the true one until an entry of this term commits (the no-op).
      this.readsAwaitingCommit.push({ ctx, from, lease });
      return;
    }
    const index = this.log.committed;
    if (this.log.conf().voters.length === 1 || (lease && this.cfg.leaseReads && this.leaseValid())) {
      this.answerRead(ctx, from, index);
      return;
    }
    this.reads.push({ ctx, from, index, round: this.round + 1 });
    this.roundPending = true;
  }

  private leaseValid(): boolean {
    if (this.role !== Role.Leader || this.leadTransferee !== NONE) return false;
    return mutations.leaseWithoutCheckQuorum || this.ticks < this.leaseUntil;
  }

  private answerRead(ctx: Uint8Array, from: NodeId, index: number): void {
    if (from === this.id) {
      if (index < 0) this.failedReads.push(ctx);
      else this.readStates.push({ ctx, index });
    } else {
      this.send({ type: MsgType.ReadIndexResp, to: from, ctx, index });
      // The follower applies up to `index` before it reads: it must know the commit now.
      if (index >= 0) this.dirty.set(from, true);
    }
  }

  private broadcastHeartbeat(): void {
    this.heartbeatElapsed = 0;
    this.round++;
    this.roundSentAt.set(this.round, this.ticks);
    for (const [id, pr] of this.prs) {
      this.send({ type: MsgType.Heartbeat, to: id, commit: Math.min(pr.match, this.log.committed), round: this.round, ...(this.quiet ? { quiet: true } : {}) });
    }
    this.releaseReads();
  }

  /** Serves reads whose heartbeat round a quorum has acknowledged, and extends the lease. */
  private releaseReads(): void {
    const voters = this.log.conf().voters;
    const acked = majorityValue(voters.map((v) => (v === this.id ? this.round : (this.prs.get(v)?.ackedRound ?? 0))));
    while (this.reads.length > 0 && this.reads[0]!.round <= acked) {
      const r = this.reads.shift()!;
      this.answerRead(r.ctx, r.from, r.index);
    }
    // The lease runs from when the acknowledged heartbeats were *sent*, minus the drift bound.
    const sentAt = this.roundSentAt.get(acked);
    if (sentAt !== undefined && voters.includes(this.id)) {
      this.leaseUntil = Math.max(this.leaseUntil, sentAt + this.cfg.electionTicks - this.cfg.clockDriftTicks);
    }
    for (const r of this.roundSentAt.keys()) if (r < acked) this.roundSentAt.delete(r);
  }

  // ---- Sending ----------------------------------------------------------------------------------

  private send(m: Outgoing): void {
    const msg = { ...m, from: this.id, term: m.term ?? this.term } as Message;
    // A blank replica says so in every answer to a leader: the leader refuses membership changes
    // meanwhile (proposeConf); it cannot tell from the match index, which may be the old disk's.
    if ((msg.type === MsgType.AppendResp || msg.type === MsgType.HeartbeatResp) && this.blank) msg.blank = true;
    this.msgs.push(msg);
  }

  /** Turns the pending broadcast requests of this turn into messages: one batch per follower. */
  private flush(): void {
    if (this.role !== Role.Leader) {
      this.dirty.clear();
      this.roundPending = false;
      return;
    }
    if (this.roundPending) {
      this.roundPending = false;
      this.broadcastHeartbeat();
    }
    for (const [id, force] of this.dirty) this.sendAppend(id, force);
    this.dirty.clear();
  }

  private sendAppend(to: NodeId, sendIfEmpty: boolean): void {
    const pr = this.prs.get(to);
    if (!pr) return;
    const log = this.log;
    for (;;) {
      if (pr.state === ProgressState.Snapshot) {
        this.sendSnapshotChunks(to, pr);
        return;
      }
      if (pr.state === ProgressState.Probe && pr.probeSent) return;
      if (pr.state === ProgressState.Replicate && pr.windowFull(this.cfg.maxInflight)) return;
      const prevIndex = pr.next - 1;
      const prevTerm = log.term(prevIndex);
      if (prevTerm === undefined) {
        this.startSnapshotSend(pr);
        continue;
      }
      const entries = log.slice(pr.next, log.lastIndex() + 1, this.cfg.maxMsgBytes);
      if (entries.length === 0 && !sendIfEmpty) return;
      this.send({ type: MsgType.Append, to, prevIndex, prevTerm, entries, commit: log.committed });
      sendIfEmpty = false;
      if (pr.state === ProgressState.Probe) {
        pr.probeSent = true;
        return;
      }
      if (entries.length === 0) return;
      pr.next = entries.at(-1)!.index + 1;
      pr.inflight.push(pr.next - 1);
      if (pr.next > log.lastIndex()) return;
    }
  }

  private startSnapshotSend(pr: Progress): void {
    const index = this.cfg.snapshots.capture();
    const term = this.log.term(index);
    if (term === undefined || index < this.log.base.index) {
      throw new Error(`raft: snapshot source captured index ${index} outside the log [${this.log.base.index}, ${this.log.lastIndex()}]`);
    }
    pr.state = ProgressState.Snapshot;
    pr.inflight = [];
    pr.snapshot = {
      meta: { index, term, conf: this.log.confAt(index) },
      transfer: this.nextTransfer++,
      nextSeq: 0,
      cursor: null,
      sentAll: false,
      ackedSeq: -1,
      ackedCursor: null,
      cursorAfter: new Map(),
      idleTicks: 0,
    };
  }

  private sendSnapshotChunks(to: NodeId, pr: Progress): void {
    const s = pr.snapshot!;
    while (!s.sentAll && s.nextSeq - s.ackedSeq - 1 < this.cfg.snapshotWindow) {
      const { data, next } = this.cfg.snapshots.read(s.meta.index, s.cursor, this.cfg.snapshotChunkBytes);
      const last = next === null;
      this.send({ type: MsgType.Snapshot, to, meta: s.meta, transfer: s.transfer, seq: s.nextSeq, data, last });
      s.cursorAfter.set(s.nextSeq, next);
      s.nextSeq++;
      s.cursor = next;
      s.sentAll = last;
    }
  }

  private endSnapshotSend(pr: Progress): void {
    if (pr.snapshot) this.cfg.snapshots.release(pr.snapshot.meta.index);
    pr.snapshot = undefined;
  }

  // ---- State snapshots for Ready ------------------------------------------------------------------

  private hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  private softState(): SoftState {
    return { role: this.role, leader: this.lead, term: this.term };
  }
}

function sameHard(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function sameSoft(a: SoftState, b: SoftState): boolean {
  return a.role === b.role && a.leader === b.leader && a.term === b.term;
}

/** Orders ticks earliest first (-Infinity included, where a subtraction would give NaN). */
function earlier(a: number, b: number): number {
  return a === b ? 0 : a < b ? -1 : 1;
}
