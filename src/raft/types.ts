// The data the Raft core takes in and hands out. Pure data: no I/O, no classes.

/** A replica id, unique within the cluster. 0 means "none". */
export type NodeId = number;
export const NONE: NodeId = 0;

export const EntryType = {
  /** Application command (empty data = the leader's no-op on election). */
  Normal: 0,
  /**
   * Configuration change; data is the encoded *full* new configuration (see conf.ts). A leader
   * whose log holds none appends one restating the configuration in force as its election entry.
   */
  Conf: 1,
} as const;
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

export interface Entry {
  index: number;
  term: number;
  type: EntryType;
  data: Uint8Array;
}

/** Persistent election state. Must be durable before any message of the Ready that carries it is sent. */
export interface HardState {
  term: number;
  vote: NodeId;
  commit: number;
}

/** Membership: voters decide; learners only receive the log. */
export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

/**
 * The point the log starts after: everything up to `index` is folded into the state machine
 * (by compaction or by an installed snapshot), `term` is the term of entry `index`, and `conf` the
 * configuration in force at `index`.
 */
export interface SnapshotMeta {
  index: number;
  term: number;
  conf: ConfState;
}

/** One chunk of an incoming snapshot, to be staged by the application (seq 0 starts a new one). */
export interface SnapshotChunk {
  meta: SnapshotMeta;
  seq: number;
  data: Uint8Array;
  last: boolean;
}

/** A read that may be served once the state machine has applied `index`. */
export interface ReadState {
  ctx: Uint8Array;
  index: number;
}

export const Role = {
  Follower: 'follower',
  PreCandidate: 'pre-candidate',
  Candidate: 'candidate',
  Leader: 'leader',
} as const;
export type Role = (typeof Role)[keyof typeof Role];

/** Volatile state for the application (routing, status); never persisted. */
export interface SoftState {
  role: Role;
  leader: NodeId;
  term: number;
}

// ---- Messages ---------------------------------------------------------------------------------

export const MsgType = {
  PreVote: 1,
  PreVoteResp: 2,
  Vote: 3,
  VoteResp: 4,
  Append: 5,
  AppendResp: 6,
  Heartbeat: 7,
  HeartbeatResp: 8,
  Snapshot: 9,
  SnapshotResp: 10,
  TimeoutNow: 11,
  ReadIndex: 12,
  ReadIndexResp: 13,
} as const;
export type MsgType = (typeof MsgType)[keyof typeof MsgType];

interface Base {
  from: NodeId;
  to: NodeId;
  term: number;
}

/** term is the term the pre-candidate *would* campaign in (its term + 1); nobody persists it. */
export interface PreVoteMsg extends Base { type: typeof MsgType.PreVote; lastIndex: number; lastTerm: number }
export interface VoteMsg extends Base {
  type: typeof MsgType.Vote;
  lastIndex: number;
  lastTerm: number;
  /** Campaign started by TimeoutNow: voters skip the leader-lease check. */
  transfer: boolean;
}
export interface VoteRespMsg extends Base { type: typeof MsgType.VoteResp | typeof MsgType.PreVoteResp; reject: boolean }

export interface AppendMsg extends Base {
  type: typeof MsgType.Append;
  prevIndex: number;
  prevTerm: number;
  entries: Entry[];
  commit: number;
}
export interface AppendRespMsg extends Base {
  type: typeof MsgType.AppendResp;
  /** Accepted: the last index now known to match (persisted). Rejected: the rejected prevIndex. */
  index: number;
  reject: boolean;
  /** On reject: where the leader should look next (fast backtracking). */
  hintIndex: number;
  hintTerm: number;
  /** The sender is blank (RaftConfig.blankStart, not caught up since). Absent = false (protocol < 4). */
  blank?: true;
}
export interface HeartbeatMsg extends Base {
  type: typeof MsgType.Heartbeat;
  commit: number;
  /** Heartbeat round: ReadIndex confirmation and lease renewal count acks per round. */
  round: number;
  /**
   * The leader is quiet (idle group, every replica caught up): it heartbeats once per election
   * timeout, and followers wait QUIET_FACTOR election timeouts before campaigning. Absent = false.
   */
  quiet?: true;
}
export interface HeartbeatRespMsg extends Base {
  type: typeof MsgType.HeartbeatResp;
  round: number;
  /** As AppendRespMsg.blank. */
  blank?: true;
}

export interface SnapshotMsg extends Base {
  type: typeof MsgType.Snapshot;
  meta: SnapshotMeta;
  /** Which transfer this chunk belongs to (unique per sender and term): a restarted transfer of the same image is a new one. */
  transfer: number;
  seq: number;
  data: Uint8Array;
  last: boolean;
}
export interface SnapshotRespMsg extends Base {
  type: typeof MsgType.SnapshotResp;
  meta: SnapshotMeta;
  transfer: number;
  /** Highest chunk received in order (-1: nothing; start again from 0). */
  seq: number;
  /** The snapshot is installed and persisted. */
  done: boolean;
}
export interface TimeoutNowMsg extends Base { type: typeof MsgType.TimeoutNow }
export interface ReadIndexMsg extends Base { type: typeof MsgType.ReadIndex; ctx: Uint8Array }
export interface ReadIndexRespMsg extends Base {
  type: typeof MsgType.ReadIndexResp;
  ctx: Uint8Array;
  /** -1: the leader could not serve it (no longer leader, transfer in progress). */
  index: number;
}

export type Message =
  | PreVoteMsg
  | VoteMsg
  | VoteRespMsg
  | AppendMsg
  | AppendRespMsg
  | HeartbeatMsg
  | HeartbeatRespMsg
  | SnapshotMsg
  | SnapshotRespMsg
  | TimeoutNowMsg
  | ReadIndexMsg
  | ReadIndexRespMsg;

// ---- Ready ------------------------------------------------------------------------------------

/**
 * What the core asks the I/O shell to do, in this order:
 *  1. stage `snapshotChunks`; if `snapshot` is set, atomically replace the state machine with the
 *     staged image and record `snapshot` as the log base (drop the whole log);
 *  2. if `compaction` is set, delete log entries up to `compaction.index` and record it as the log base;
 *  3. append `entries` (an entry whose index is already stored replaces it and everything after it)
 *     and store `hardState` — in one durable write (group commit);
 *  4. only then send `messages` — with one exception, below;
 *  5. apply `committedEntries` in order, then serve `readStates` once applied >= their index;
 *  6. call `advance(ready)`.
 * Only one Ready is outstanding at a time; steps taken meanwhile go into the next one.
 *
 * Early sends. Messages of type Append, Heartbeat, Snapshot and TimeoutNow may leave before step 3
 * is durable, provided the Ready's `hardState` is absent or keeps the term and vote already
 * durable. Only a leader sends these, and they claim nothing about its own disk: the core counts
 * the leader's own entries toward a quorum only after `advance` says they are durable, so followers
 * may write in parallel with the leader. Everything else waits for step 3: votes and their
 * answers (a vote binds only once durable), AppendResp/SnapshotResp (an acknowledgement says the
 * entries are on this disk), and every message of a Ready that changes the term or vote (no one
 * may hear of a term before it survives a crash here).
 * `committedEntries` are durable on a quorum already, so step 5 may start with step 3 (one commit),
 * and their results may be answered before the apply itself is durable: a crash re-applies them
 * from the log to the same results. Reads of this replica wait for that apply to be visible.
 */
export interface Ready {
  softState: SoftState | undefined;
  hardState: HardState | undefined;
  snapshotChunks: SnapshotChunk[];
  snapshot: SnapshotMeta | undefined;
  compaction: SnapshotMeta | undefined;
  entries: Entry[];
  messages: Message[];
  committedEntries: Entry[];
  readStates: ReadState[];
  /** Read requests this node could not serve (no leader known, lost leadership): fail them fast. */
  failedReads: Uint8Array[];
}

/** What a restarting node finds on disk. */
export interface PersistedState {
  hardState: HardState;
  /** The log base (last compaction or installed snapshot); for a fresh node {0, 0, initial conf}. */
  base: SnapshotMeta;
  /** Entries base.index+1 .. last, contiguous. */
  entries: Entry[];
  /** The state machine's applied index (>= base.index). */
  applied: number;
}

/**
 * Reads a consistent image of the application's state machine, for sending snapshots. Synchronous
 * by design (LMDB read transactions are), so the core stays free of callbacks and promises.
 */
export interface SnapshotSource {
  /** Pins an image of the state as of the applied index and returns that index. */
  capture(): number;
  /** Reads from the image pinned at `index`, starting at `cursor` (null = beginning). */
  read(index: number, cursor: Uint8Array | null, maxBytes: number): { data: Uint8Array; next: Uint8Array | null };
  /** The image is no longer needed. */
  release(index: number): void;
}

export interface RaftConfig {
  id: NodeId;
  /** Election timeout in ticks; each election waits a random number of ticks in [T, 2T). */
  electionTicks: number;
  heartbeatTicks: number;
  /** Max append messages in flight per follower (pipelining window). */
  maxInflight: number;
  /** Max bytes of entries in one append message. */
  maxMsgBytes: number;
  /** Snapshot chunk size and how many chunks may be in flight per follower. */
  snapshotChunkBytes: number;
  snapshotWindow: number;
  /** Leader serves lease reads without a heartbeat round; needs checkQuorum (always on). */
  leaseReads: boolean;
  /** Assumed bound on clock drift between replicas, in ticks; the lease is electionTicks - this. */
  clockDriftTicks: number;
  /**
   * Idle ticks (nothing to replicate, every replica caught up) after which a leader goes quiet:
   * one heartbeat per election timeout instead of one per heartbeat interval. 0 = never.
   */
  quietAfterTicks: number;
  /**
   * This replica's store was created empty with the group's configuration (not as a joiner) and it
   * has not caught up since (the store's blank mark): it cannot tell a new group from one that ran
   * while it had a disk it has since lost, with entries it acknowledged and a vote it cast. Until
   * it caught up (RaftNode.blank) it votes only for candidates holding nothing (a new group's first
   * election) and, holding entries, does not campaign, so that no candidate lacking committed
   * entries wins with its help. Undefined: false.
   */
  blankStart?: boolean;
  /** Injected PRNG returning [0, 1). */
  random: () => number;
  snapshots: SnapshotSource;
}

export type ProposeResult =
  | { ok: true; index: number; term: number }
  | {
      ok: false;
      error: 'not-leader' | 'transferring' | 'conf-change-pending' | 'invalid-conf-change';
      leader: NodeId;
      reason?: string;
    };
