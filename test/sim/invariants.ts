// Safety invariants, checked as the run goes: the harness reports every Ready, every durable write,
// every send, every apply and every snapshot install, and calls afterEvent() for each node an event
// touched. The first broken rule throws a Violation, which ends the run.
import type { RaftNode } from '../../src/raft/node.ts';
import { MsgType, Role, type Entry, type HardState, type Message, type NodeId, type Ready, type SnapshotMeta } from '../../src/raft/types.ts';
import type { DurableLog } from './disk.ts';

export type Invariant =
  | 'election-safety'
  | 'vote-once'
  | 'log-matching'
  | 'leader-completeness'
  | 'committed-agreement'
  | 'committed-overwritten'
  | 'state-machine-safety'
  | 'durable-commit'
  | 'commit-current-term'
  | 'commit-beyond-log'
  | 'persist-before-send'
  | 'applied-monotonic'
  | 'durable-answer'
  | 'read-your-writes'
  | 'ready-contract'
  | 'core-assertion'
  | 'liveness'
  | 'linearizability';

export class Violation extends Error {
  constructor(
    readonly invariant: Invariant,
    readonly detail: string,
  ) {
    super(`${invariant}: ${detail}`);
  }
}

/** What the checker needs to see of a node. */
export interface Watched {
  readonly id: NodeId;
  readonly disk: DurableLog;
  /** What its last replaced disk held (a disk replacement, docs/simulation.md), if any. */
  readonly lostDisk?: DurableLog | undefined;
  readonly node: RaftNode | null;
}

interface Track {
  commit: number;
  applied: number;
  /** Term in which the node was last seen leading (-1: it was not leading at the last check). */
  ledIn: number;
  /** Log base as the Readys have told it (for the term of the entry before the first new one). */
  base: SnapshotMeta;
}

const UNKNOWN = -1;

export class Checker {
  private readonly leaderOf = new Map<number, NodeId>();
  private readonly leaderChecked = new Set<string>();
  /** (index, term) -> hash and previous term: log matching by induction over the index. */
  private readonly logIds = new Map<number, { hash: number; prevTerm: number }>();
  /** Per committed index: its term and hash (UNKNOWN until some node shows it) and the lowest term it was seen committed in. */
  private readonly cTerm: number[] = [0];
  private readonly cHash: number[] = [0];
  private readonly cSeenIn: number[] = [0];
  private readonly tracks = new Map<NodeId, Track>();

  constructor(
    private readonly hosts: () => Iterable<Watched>,
    private readonly onLeader: (id: NodeId, term: number) => void = () => {},
  ) {}

  get committedMax(): number {
    return this.cTerm.length - 1;
  }

  /** A node (re)started from its disk: what it finds there must agree with what was committed. */
  started(w: Watched): void {
    const d = w.disk;
    for (let i = d.base.index + 1; i <= Math.min(d.hard.commit, d.lastIndex()); i++) {
      const e = d.entry(i) as Entry;
      this.commitSeen(i, e.term, entryHash(e), d.hard.term, `n${w.id} restarted`);
    }
    const node = w.node as RaftNode;
    this.tracks.set(w.id, { commit: node.commitIndex, applied: node.appliedIndex, ledIn: -1, base: d.base });
  }

  /** A Ready was taken: its new entries must fit the log-matching property. */
  readyTaken(w: Watched, rd: Ready): void {
    const t = this.track(w);
    if (rd.snapshot) t.base = rd.snapshot;
    else if (rd.compaction) t.base = rd.compaction;
    let prev: Entry | undefined;
    for (const e of rd.entries) {
      if (prev !== undefined && e.index !== prev.index + 1) {
        throw new Violation('ready-contract', `n${w.id}: Ready entries not contiguous (${prev.index} then ${e.index})`);
      }
      const prevTerm =
        prev?.term ?? (e.index - 1 === t.base.index ? t.base.term : (w.node?.entryAt(e.index - 1)?.term ?? UNKNOWN));
      const hash = entryHash(e);
      const key = e.index * 2097152 + e.term;
      const seen = this.logIds.get(key);
      if (seen === undefined) this.logIds.set(key, { hash, prevTerm });
      else if (seen.hash !== hash || (seen.prevTerm !== prevTerm && seen.prevTerm !== UNKNOWN && prevTerm !== UNKNOWN)) {
        throw new Violation(
          'log-matching',
          `n${w.id} has entry ${e.index}/t${e.term} with ${seen.hash !== hash ? 'different content' : `previous term ${prevTerm} (elsewhere ${seen.prevTerm})`}`,
        );
      }
      // A lagging follower may hold a stale entry where the cluster committed another one, but
      // never at or below its own commit index.
      if (e.index <= this.committedMax && e.index <= (w.node?.commitIndex ?? 0)) {
        const ct = this.cTerm[e.index] as number;
        if (ct !== UNKNOWN && ct !== e.term) {
          throw new Violation('committed-overwritten', `n${w.id} writes ${e.index}/t${e.term} over committed ${e.index}/t${ct}`);
        }
      }
      prev = e;
    }
  }

  /** A hard state became durable. */
  persisted(w: Watched, before: HardState, after: HardState): void {
    if (after.term < before.term) throw new Violation('vote-once', `n${w.id} term went back ${before.term} -> ${after.term}`);
    if (after.term === before.term && before.vote !== 0 && after.vote !== before.vote) {
      throw new Violation('vote-once', `n${w.id} voted for ${before.vote} then ${after.vote} in term ${after.term}`);
    }
    if (after.commit > Math.max(w.disk.lastIndex(), w.disk.base.index)) {
      throw new Violation('commit-beyond-log', `n${w.id} persisted commit ${after.commit} but its durable log ends at ${w.disk.lastIndex()}`);
    }
  }

  /** A message is about to leave: whatever it claims must already be durable. */
  sending(w: Watched, m: Message): void {
    const hard = w.disk.hard;
    if (m.type === MsgType.PreVote || m.type === MsgType.PreVoteResp) return;
    if (m.term > hard.term) {
      throw new Violation('persist-before-send', `n${w.id} sends ${msgName(m)} in term ${m.term} with term ${hard.term} on disk`);
    }
    // A grant binds once the vote (or a later term, after which it never votes in this one again) is durable.
    if (m.type === MsgType.VoteResp && !m.reject && (hard.term < m.term || (hard.term === m.term && hard.vote !== m.to))) {
      throw new Violation('persist-before-send', `n${w.id} grants its vote to n${m.to} in term ${m.term}, disk says term ${hard.term} vote ${hard.vote}`);
    }
    // Only acknowledgements of the current durable term are checked: one queued before the node
    // moved to a later term (and truncated) can reach the old leader, but cannot help it commit — a
    // newer leader exists, elected by a majority none of which held those entries.
    if (m.type === MsgType.AppendResp && !m.reject && m.term === hard.term && m.index > Math.max(w.disk.lastIndex(), w.disk.base.index)) {
      throw new Violation('persist-before-send', `n${w.id} acknowledges index ${m.index} but its durable log ends at ${w.disk.lastIndex()}`);
    }
  }

  /**
   * Entry e goes to the state machine after `prev`: in order, and the entry committed at its index
   * (the state machine is deterministic, so replicas applying the same entries agree). The apply
   * may join the persist of the same Ready (one storage commit), so its own durability is checked
   * where it counts: a restart finds the applied index within the durable log (storage recover).
   */
  applying(w: Watched, e: Entry, prev: number): void {
    if (e.index !== prev + 1) {
      throw new Violation('applied-monotonic', `n${w.id} applies ${e.index} after ${prev}`);
    }
    this.commitSeen(e.index, e.term, entryHash(e), w.disk.hard.term, `n${w.id} applies it`, 'state-machine-safety');
  }

  /**
   * A client got a successful answer for entry (index, term) from w: the entry must be committed
   * (and `durable-commit` saw a majority of the voters of that moment hold it on disk). Checked
   * against the commit, not today's voters: the configuration may have changed since.
   */
  answered(w: Watched, index: number, term: number): void {
    const known = index <= this.committedMax ? (this.cTerm[index] as number) : undefined;
    if (known === undefined || (known !== UNKNOWN && known !== term)) {
      throw new Violation('durable-answer', `n${w.id} answers ${index}/t${term}, which is not committed${known === undefined ? '' : ` (${index}/t${known} is)`}`);
    }
  }

  /** After every event that touched node w. */
  afterEvent(w: Watched): void {
    const node = w.node;
    if (node === null) return;
    const t = this.track(w);
    const s = node.status;
    const leader = s.role === Role.Leader;
    if (leader) {
      const other = this.leaderOf.get(s.term);
      if (other === undefined) this.leaderOf.set(s.term, w.id);
      else if (other !== w.id) throw new Violation('election-safety', `n${other} and n${w.id} are both leaders of term ${s.term}`);
      const key = `${w.id}:${s.term}`;
      if (!this.leaderChecked.has(key)) {
        this.leaderChecked.add(key);
        this.checkCompleteness(w.id, node, s.term, s.firstIndex - 1);
        this.onLeader(w.id, s.term);
      }
    }
    if (s.commit > t.commit) {
      // The commit was the leader's own decision if it leads now, or led in this term until this
      // event (e.g. it stepped down when its own removal committed).
      const decided = leader || t.ledIn === s.term;
      // Figure 8: a leader commits by counting replicas only an entry of its own term (older
      // entries commit with it). Checked directly, since the loss it risks needs rare timing.
      const top = node.entryAt(s.commit);
      if (decided && top !== undefined && top.term !== s.term) {
        throw new Violation('commit-current-term', `leader n${w.id} of term ${s.term} advanced its commit to ${s.commit}/t${top.term}`);
      }
      for (let i = t.commit + 1; i <= s.commit; i++) {
        const e = node.entryAt(i);
        this.commitSeen(i, e?.term ?? UNKNOWN, e ? entryHash(e) : UNKNOWN, s.term, `n${w.id} commits it`);
        if (decided && e) this.checkDurable(`leader n${w.id} commits`, e, s.conf.voters, 'durable-commit');
      }
      t.commit = s.commit;
    }
    if (s.applied < t.applied) throw new Violation('applied-monotonic', `n${w.id} applied index went back ${t.applied} -> ${s.applied}`);
    t.applied = s.applied;
    t.ledIn = leader ? s.term : -1;
  }

  private track(w: Watched): Track {
    let t = this.tracks.get(w.id);
    if (t === undefined) {
      t = { commit: 0, applied: 0, ledIn: -1, base: w.disk.base };
      this.tracks.set(w.id, t);
    }
    return t;
  }

  /** Index i is committed with (term, hash) as seen by someone in term `seenIn`. */
  private commitSeen(i: number, term: number, hash: number, seenIn: number, who: string, rule: Invariant = 'committed-agreement'): void {
    while (this.cTerm.length <= i) {
      this.cTerm.push(UNKNOWN);
      this.cHash.push(UNKNOWN);
      this.cSeenIn.push(seenIn);
    }
    const known = this.cTerm[i] as number;
    if (known === UNKNOWN) {
      this.cTerm[i] = term;
      this.cHash[i] = hash;
    } else if (term !== UNKNOWN && (known !== term || this.cHash[i] !== hash)) {
      throw new Violation(rule, `${who}: committed entry ${i} is ${i}/t${term} here but ${i}/t${known} elsewhere`);
    }
    // A commit known in term T binds every leader of a later term.
    if (seenIn < (this.cSeenIn[i] as number)) this.cSeenIn[i] = seenIn;
    for (let j = i - 1; j > 0 && seenIn < (this.cSeenIn[j] as number); j--) this.cSeenIn[j] = seenIn;
  }

  /** Leader completeness: a new leader of term T holds every entry committed before T. */
  private checkCompleteness(id: NodeId, node: RaftNode, term: number, base: number): void {
    for (let i = base + 1; i <= this.committedMax; i++) {
      if ((this.cSeenIn[i] as number) >= term) continue;
      const want = this.cTerm[i] as number;
      const have = node.entryAt(i)?.term;
      if (have === undefined) {
        throw new Violation('leader-completeness', `n${id} leads term ${term} without committed entry ${i}/t${want}`);
      }
      if (want !== UNKNOWN && have !== want) {
        throw new Violation('leader-completeness', `n${id} leads term ${term} with ${i}/t${have} where ${i}/t${want} was committed`);
      }
    }
  }

  /** A leader commits (a replica answers) e only once a majority of voters hold it durably. */
  private checkDurable(who: string, e: { index: number; term: number }, voters: readonly NodeId[], rule: Invariant): void {
    let holding = 0;
    // A replica whose disk was replaced after it acknowledged e held it durably when it said so:
    // the leader may count that acknowledgement (the blank rules keep e safe, docs/raft.md).
    for (const h of this.hosts()) if (voters.includes(h.id) && (h.disk.holds(e.index, e.term) || h.lostDisk?.holds(e.index, e.term) === true)) holding++;
    if (holding < Math.floor(voters.length / 2) + 1) {
      throw new Violation(rule, `${who} ${e.index}/t${e.term} while only ${holding} of voters [${voters.join(',')}] hold it durably`);
    }
  }
}

export function msgName(m: Message): string {
  return Object.entries(MsgType).find(([, v]) => v === m.type)?.[0] ?? `type${m.type}`;
}

/** FNV-1a over an entry's type and bytes: equal entries, equal hashes. */
export function entryHash(e: Entry): number {
  let h = Math.imul(0x811c9dc5 ^ e.type, 0x01000193);
  for (let i = 0; i < e.data.length; i++) h = Math.imul(h ^ (e.data[i] as number), 0x01000193);
  return h >>> 0;
}
