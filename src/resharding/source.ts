// The source side of a hand-off: freeze partitions (through this group's log, on its leader) and
// export their data in chunks. Most of it is copied before the freeze, while the partitions are
// still served: a pre-copy walks their keys on the leader and tracks, from that moment, every key a
// committed write touches; delta rounds then send only the tracked keys (deleted ones as removed),
// the last one once the partitions are frozen. The delta needs the tracking leader in the same term; anything else (a new leader, too
// many changes) is refused and the destination copies in full while frozen, from any replica once
// a read barrier shows the freeze applied (docs/resharding.md).
import type { Replica } from '../replica/replica.ts';
import { NotLeaderError } from '../replica/replica.ts';
import type { StateMachine } from '../replica/state-machine.ts';
import { encodeOwnership as encodeOwnershipCommand } from '../replica/commands.ts';
import { PartState } from '../replica/ownership.ts';
import { walkPartitionKeys, type KeyScanner } from './partition-scan.ts';
import { ChangeTracker, decodeTrackedCursor, encodeTrackedCursor, type TrackedKey } from './change-tracker.ts';
import type { ExportChunk, ExportRequest, FreezeRequest } from '../wire/handoff-codec.ts';
import type { KeyValue, Response } from '../wire/index.ts';

export interface SourceStore extends KeyScanner {
  get(key: Uint8Array): Uint8Array | null;
  sessionImages(): { clientId: Uint8Array; record: Uint8Array }[];
}

/**
 * Keys examined per export call at most, so that a call answers well within the caller's deadline
 * even when the wave's keys are sparse; up to it, a call fills its chunk to maxBytes (few, full
 * chunks: few import entries through the destination's log).
 */
const SCAN_BUDGET = 400_000;
/** Pre-copies tracked at once (several destinations may pull from one source), and how long one lives unused. */
const MAX_TRACKERS = 16;
const TRACKER_IDLE_MS = 10 * 60_000;

export class HandoffSource {
  /** Pre-copies whose changes are being tracked, by epoch and partitions (one attempt, its copy id, each). */
  private readonly trackers = new Map<string, ChangeTracker>();

  constructor(
    private readonly replica: Replica,
    private readonly sm: StateMachine,
    private readonly store: SourceStore,
    private readonly leaderAddress: () => string,
    private readonly now: () => number = Date.now,
    /**
     * A request named a configuration epoch this group has not applied: the caller knows of a
     * newer configuration than this process does (its poll backs off while nothing changes), so
     * it reads the configuration now instead of at its next poll.
     */
    private readonly onNewerEpoch: () => void = () => {},
  ) {}

  private noticeEpoch(epoch: number): void {
    if (epoch > this.sm.epoch) this.onNewerEpoch();
  }

  async freeze(req: FreezeRequest): Promise<Response> {
    this.noticeEpoch(req.epoch);
    const own = this.sm.ownership;
    if (!own) return error('UNAVAILABLE', 'this group is not sharded');
    if (!this.replica.isLeader) return { kind: 'error', error: { code: 'NOT_LEADER', message: 'freeze goes through the leader', leaderId: this.replica.leader, leaderAddr: this.leaderAddress() } };
    const states = req.partitions.map((p) => own.state[p]);
    if (states.some((s) => s === PartState.Serving || s === undefined)) {
      return error('UNAVAILABLE', `group ${this.sm.group} has not applied epoch ${req.epoch} yet`);
    }
    if (states.some((s) => s !== PartState.Leaving && s !== PartState.Frozen)) {
      return error('BAD_REQUEST', `group ${this.sm.group} is not handing off all of ${req.partitions.join(',')}`);
    }
    if (states.some((s) => s === PartState.Leaving)) {
      try {
        await this.replica.propose(encodeOwnershipCommand({ type: 'freeze', partitions: req.partitions }));
      } catch (e) {
        if (e instanceof NotLeaderError) return error('UNAVAILABLE', e.message);
        throw e;
      }
    }
    return { kind: 'ok' };
  }

  async export(req: ExportRequest): Promise<ExportChunk | Response> {
    this.noticeEpoch(req.epoch);
    switch (req.mode ?? 'frozen') {
      case 'frozen':
        return this.exportFrozen(req);
      case 'precopy':
        return this.precopy(req);
      case 'delta':
        return this.delta(req);
    }
  }

  /**
   * One chunk of the partitions' pairs while they are still served (leaving). The first call starts
   * tracking their changes: before its read barrier, so every write applied before then is visible
   * to the walk, and every one after is tracked.
   */
  private async precopy(req: ExportRequest): Promise<ExportChunk | Response> {
    const own = this.sm.ownership;
    if (!own || req.partitions.some((p) => own.state[p] !== PartState.Leaving && own.state[p] !== PartState.Frozen)) {
      return error('UNAVAILABLE', `group ${this.sm.group} is not handing off all of ${req.partitions.join(',')} at epoch ${this.sm.epoch}`);
    }
    if (!this.replica.isLeader) return this.notLeader('a pre-copy is read on the leader');
    // A destination of the first version names no copy: its resent delta would lose a round.
    if (!req.copy) return error('BAD_REQUEST', 'a pre-copy names its copy id and round: copy while frozen');
    const copy = req.copy.id;
    const id = trackerId(req);
    // A new pre-copy of the wave (a new attempt, or a new destination leader) replaces the old one.
    if (req.cursor === null) this.startTracking(id, req.partitions, copy);
    else if (this.trackers.get(id)?.copy !== copy) {
      return error('BAD_REQUEST', 'this pre-copy is not tracked here (a new leader, or a newer attempt?): copy while frozen');
    }
    try {
      await this.replica.readBarrier();
    } catch (e) {
      return error('UNAVAILABLE', (e as Error).message);
    }
    const tracker = this.trackers.get(id);
    if (!tracker || tracker.copy !== copy || tracker.term !== this.term()) return error('BAD_REQUEST', 'leadership changed during the pre-copy: copy while frozen');
    tracker.lastUsed = this.now();
    const { items, next } = await this.collect(req);
    return { items, sessions: [], next };
  }

  /**
   * One round of the tracked keys, with their values now (deleted ones as removed). While the
   * partitions are still served, a round sends what changed during the pre-copy or the previous
   * round and tracking goes on; once they are frozen, the last round completes the copy and carries
   * the sessions. A round's first call takes its keys before its read barrier, so every write they
   * name is visible to it, and later writes fall to the next round.
   */
  private async delta(req: ExportRequest): Promise<ExportChunk | Response> {
    if (!this.replica.isLeader) return this.notLeader('a delta is read on the leader that tracked it');
    const id = trackerId(req);
    const tracker = this.trackers.get(id);
    const refuse = (why: string): Response => error('BAD_REQUEST', `no delta: ${why}; copy the partitions in full`);
    if (!tracker || !req.copy || tracker.copy !== req.copy.id) return refuse('no pre-copy of these partitions by this copy is tracked here');
    const n = req.copy.round;
    let from: TrackedKey | null = null;
    try {
      if (req.cursor) from = decodeTrackedCursor(req.cursor);
    } catch (e) {
      return error('BAD_REQUEST', (e as Error).message);
    }
    // Round n again (its answer was lost, the request resent) replays it; n + 1 starts the next.
    if (req.cursor === null && !tracker.startRound(n)) return refuse(`round ${n} does not follow round ${tracker.lastRound}`);
    try {
      await this.replica.readBarrier();
    } catch (e) {
      return error('UNAVAILABLE', (e as Error).message);
    }
    if (tracker.term !== this.term()) return refuse('leadership changed since the pre-copy');
    if (tracker.overflowed) return refuse('too many keys changed since the pre-copy');
    const own = this.sm.ownership;
    const frozen = own !== undefined && req.partitions.every((p) => own.state[p] === PartState.Frozen);
    if (!frozen && (!own || req.partitions.some((p) => own.state[p] !== PartState.Leaving))) {
      return error('UNAVAILABLE', `partitions ${req.partitions.join(',')} are not handed off by group ${this.sm.group}`);
    }
    const round = tracker.roundFrom(n, from);
    if (!round) return refuse(`round ${n} was not started here`);
    tracker.lastUsed = this.now();
    const items: KeyValue[] = [];
    const removed: Uint8Array[] = [];
    let bytes = 0;
    let next: Uint8Array | null = null;
    for (const t of round) {
      if (bytes >= req.maxBytes) {
        next = encodeTrackedCursor(t);
        break;
      }
      const value = this.store.get(t.key);
      if (value === null) removed.push(t.key);
      else items.push({ key: Buffer.from(t.key), value: Buffer.from(value) });
      bytes += t.key.length + (value?.length ?? 0);
    }
    if (next === null) {
      tracker.endRound();
      if (frozen) {
        this.trackers.delete(id);
        this.rewatch();
      }
    }
    const sessions = frozen && req.cursor === null ? this.store.sessionImages() : [];
    return { items, sessions, next, ...(removed.length > 0 ? { removed } : {}) };
  }

  private startTracking(id: string, partitions: readonly number[], copy: number): void {
    const now = this.now();
    for (const [k, t] of this.trackers) if (now - t.lastUsed > TRACKER_IDLE_MS) this.trackers.delete(k);
    this.trackers.delete(id);
    if (this.trackers.size >= MAX_TRACKERS) {
      const oldest = [...this.trackers.entries()].sort((a, b) => a[1].lastUsed - b[1].lastUsed)[0]!;
      this.trackers.delete(oldest[0]);
    }
    this.trackers.set(id, new ChangeTracker(this.term(), partitions, (k) => this.sm.partitionOf(k), now, copy));
    this.rewatch();
  }

  /** The state machine tells the trackers (if any) every key a committed write touches. */
  private rewatch(): void {
    const trackers = [...this.trackers.values()];
    this.sm.keyWatcher =
      trackers.length === 0
        ? undefined
        : (key) => {
            for (const t of trackers) t.note(key);
          };
  }

  private term(): number {
    return this.replica.node.status.term;
  }

  private notLeader(message: string): Response {
    return { kind: 'error', error: { code: 'NOT_LEADER', message, leaderId: this.replica.leader, leaderAddr: this.leaderAddress() } };
  }

  /** One chunk of the frozen partitions' pairs, from `cursor`; sessions ride with the first chunk. */
  private async exportFrozen(req: ExportRequest): Promise<ExportChunk | Response> {
    try {
      await this.replica.readBarrier();
    } catch (e) {
      return error('UNAVAILABLE', (e as Error).message);
    }
    const own = this.sm.ownership;
    if (!own || req.partitions.some((p) => own.state[p] !== PartState.Frozen)) {
      return error('UNAVAILABLE', `partitions ${req.partitions.join(',')} are not frozen in group ${this.sm.group}`);
    }
    const { items, next } = await this.collect(req);
    return { items, sessions: req.cursor === null ? this.store.sessionImages() : [], next };
  }

  /** The pairs of the requested partitions from the request's cursor, up to its size. */
  private async collect(req: ExportRequest): Promise<{ items: KeyValue[]; next: Uint8Array | null }> {
    const items: KeyValue[] = [];
    let bytes = 0;
    const next = await walkPartitionKeys(
      this.store,
      req.cursor ?? new Uint8Array(0),
      new Set(req.partitions),
      (k) => this.sm.partitionOf(k),
      (key) => {
        if (bytes >= req.maxBytes) return false; // resume here next time
        const value = this.store.get(key);
        if (value === null) return true; // frozen partitions do not change; never expected
        items.push({ key: Buffer.from(key), value: Buffer.from(value) });
        bytes += key.length + value.length;
        return true;
      },
      SCAN_BUDGET,
    );
    return { items, next };
  }
}

function trackerId(req: ExportRequest): string {
  return `${req.epoch}:${[...req.partitions].sort((a, b) => a - b).join(',')}`;
}

function error(code: 'UNAVAILABLE' | 'BAD_REQUEST', message: string): Response {
  return { kind: 'error', error: { code, message } };
}
