// What the leader knows about each follower's log, and how it is allowed to send to it.
import type { SnapshotMeta } from './types.ts';

export const ProgressState = {
  /** Unknown match: one append per heartbeat until the follower's log position is found. */
  Probe: 'probe',
  /** Known match: appends are pipelined optimistically, up to the in-flight window. */
  Replicate: 'replicate',
  /** The follower needs entries that were compacted: a snapshot is being streamed. */
  Snapshot: 'snapshot',
} as const;
export type ProgressState = (typeof ProgressState)[keyof typeof ProgressState];

/** An outgoing snapshot transfer: chunks are resent from the last acknowledged one after a stall. */
export interface SnapshotSend {
  meta: SnapshotMeta;
  /** This transfer's id: chunks and acknowledgements of any other transfer are ignored. */
  transfer: number;
  /** Next chunk number to send, and where it starts in the image (null = beginning). */
  nextSeq: number;
  cursor: Uint8Array | null;
  /** All chunks have been sent (the last carried last = true). */
  sentAll: boolean;
  /** Highest chunk acknowledged, and the cursor just after it. */
  ackedSeq: number;
  ackedCursor: Uint8Array | null;
  /** Cursor after each sent, unacknowledged chunk, to move ackedCursor forward. */
  cursorAfter: Map<number, Uint8Array | null>;
  /** Ticks since the transfer last made progress. */
  idleTicks: number;
}

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = ProgressState.Probe;
  /** Probe state: an append is out and we wait for its answer (or the next heartbeat). */
  probeSent = false;
  /** Replicate state: last index of each append in flight, oldest first. */
  inflight: number[] = [];
  /** Heard from since the last CheckQuorum period. */
  recentActive = false;
  /** The leader's tick (RaftNode's clock) when this peer last answered; -Infinity: not yet this term. */
  heardAt = Number.NEGATIVE_INFINITY;
  /**
   * When the current unbroken run of answers began: the first answer after a silence of more than
   * a few heartbeats (RaftNode.breakTicks: a peer that restarted, or was cut off) starts a new one.
   */
  heardSince = Number.NEGATIVE_INFINITY;
  /** The break threshold in force at the last answer (heard): a leader woken from quiet keeps it once. */
  private heardGap = 0;
  /** Highest heartbeat round this peer has answered. */
  ackedRound = 0;
  snapshot: SnapshotSend | undefined;
  /**
   * An image was installed and no append answered since: appends go on at every heartbeat answer
   * until one is. The append after an image is what tells a blank follower it caught up
   * (RaftNode.blank); lost in an idle group, it was never sent again (found in review).
   */
  appendAfterSnapshot = false;
  /**
   * The follower said in its latest answer (AppendResp, HeartbeatResp) that it is blank
   * (RaftConfig.blankStart, not caught up since): proposeConf refuses membership changes meanwhile.
   * False until it answers, and from a peer of a version that does not say.
   */
  blank = false;

  constructor(next: number) {
    this.next = next;
  }

  /**
   * The peer answered at tick `now`; a silence of more than `gap` ticks before it was a break (of
   * more than the gap in force at the last answer, if longer: a quiet leader that woke up has not
   * heard the answers of its faster heartbeats yet).
   */
  heard(now: number, gap: number): void {
    this.recentActive = true;
    if (now - this.heardAt > Math.max(gap, this.heardGap)) this.heardSince = now;
    this.heardAt = now;
    this.heardGap = gap;
  }

  becomeProbe(): void {
    this.state = ProgressState.Probe;
    this.probeSent = false;
    this.inflight = [];
    this.snapshot = undefined;
    this.next = Math.max(this.next, this.match + 1);
  }

  becomeReplicate(): void {
    this.state = ProgressState.Replicate;
    this.inflight = [];
    this.snapshot = undefined;
    this.next = this.match + 1;
  }

  /** Records an acknowledgement; acknowledgements are monotonic, so older ones change nothing. */
  ack(index: number): boolean {
    if (index <= this.match) return false;
    this.match = index;
    this.next = Math.max(this.next, index + 1);
    while (this.inflight.length > 0 && this.inflight[0]! <= index) this.inflight.shift();
    this.probeSent = false;
    return true;
  }

  windowFull(max: number): boolean {
    return this.inflight.length >= max;
  }
}
