// A proposal whose entry index is covered by a snapshot the replica installs (it fell behind: a
// leader cut off while the rest of the group moved on and compacted its log) is never applied as an
// entry on that replica. It must still settle — with "outcome unknown", since the snapshot may or
// may not hold it — or a caller without a deadline (the resharding reconciler) waits forever.
//
// Three shipped Replica shells over an in-memory storage seam, a network and a clock the test
// drives tick by tick.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DroppedError, OutcomeUnknownError, Replica, type ReplicaStorage } from '../../src/replica/replica.ts';
import type { ReplicaEnv } from '../../src/replica/env.ts';
import { defaultRaftConfig } from '../../src/raft/node.ts';
import type { Message, NodeId, SnapshotSource } from '../../src/raft/types.ts';
import type { Response } from '../../src/wire/index.ts';

const TICK_MS = 10;
const IDS: NodeId[] = [1, 2, 3];

interface Member {
  replica: Replica;
  /** The last index handed to apply or installed by a snapshot. */
  applied: number;
  installed: number[];
}

class TestCluster {
  now = 0;
  private readonly timers = new Set<() => void>();
  private readonly inbox: Message[] = [];
  /** Nodes cut off from every other node (both ways). */
  readonly cut = new Set<NodeId>();
  readonly members = new Map<NodeId, Member>();
  private nextId = 0;

  constructor() {
    for (const id of IDS) this.add(id);
    for (const m of this.members.values()) m.replica.start();
  }

  private env(): ReplicaEnv {
    return {
      now: () => this.now,
      every: (_ms, fn) => {
        this.timers.add(fn);
        return () => this.timers.delete(fn);
      },
      defer: (fn) => void setImmediate(fn),
      random: () => 0.5,
      incarnation: 1,
      nextId: () => ++this.nextId,
    };
  }

  private add(id: NodeId): void {
    const member = { applied: 0, installed: [] } as unknown as Member;
    // Images carry nothing: the test is about the shell's bookkeeping, not the state machine.
    const snapshots: SnapshotSource = {
      capture: () => member.applied,
      read: () => ({ data: new Uint8Array(0), next: null }),
      release: () => {},
    };
    const storage: ReplicaStorage = {
      persist: (rd) => {
        if (rd.snapshot) {
          member.applied = rd.snapshot.index;
          member.installed.push(rd.snapshot.index);
        }
        return Promise.resolve();
      },
      apply: (entries, onAnswers) => {
        member.applied = entries.at(-1)!.index;
        onAnswers(new Map());
        return Promise.resolve();
      },
      commitSoon: () => {},
      clearBlank: () => {},
    };
    member.replica = new Replica({
      raft: { ...defaultRaftConfig, id, quietAfterTicks: 0, random: () => [0, 0.4, 0.8][id - 1]! },
      snapshots,
      persisted: {
        hardState: { term: 0, vote: 0, commit: 0 },
        base: { index: 0, term: 0, conf: { voters: IDS, learners: [] } },
        entries: [],
        applied: 0,
      },
      storage,
      env: this.env(),
      send: (msgs) => this.inbox.push(...msgs),
      tickMs: TICK_MS,
      // Compaction only when the test asks for it.
      compactEvery: 1_000_000,
    });
    this.members.set(id, member);
  }

  replica(id: NodeId): Replica {
    return this.members.get(id)!.replica;
  }

  /** Lets every Ready loop run and every message in flight arrive, until nothing moves. */
  async settle(): Promise<void> {
    for (let round = 0; round < 50; round++) {
      await new Promise<void>((r) => setImmediate(r));
      await new Promise<void>((r) => setImmediate(r));
      const msgs = this.inbox.splice(0);
      for (const m of msgs) {
        if (this.cut.has(m.from) || this.cut.has(m.to)) continue;
        this.members.get(m.to)?.replica.step(m);
      }
      if (msgs.length === 0) {
        await new Promise<void>((r) => setImmediate(r));
        if (this.inbox.length === 0) return;
      }
    }
  }

  /** One tick of the clock on every replica, then everything it caused. */
  async tick(n = 1): Promise<void> {
    for (let i = 0; i < n; i++) {
      this.now += TICK_MS;
      for (const fn of [...this.timers]) fn();
      await this.settle();
    }
  }

  async until(what: string, cond: () => boolean, ticks = 200): Promise<void> {
    for (let i = 0; i < ticks && !cond(); i++) await this.tick();
    assert.ok(cond(), `timed out waiting for ${what}`);
  }

  leaderAmong(ids: NodeId[]): Replica | undefined {
    return ids.map((id) => this.replica(id)).find((r) => r.isLeader);
  }

  stop(): void {
    for (const m of this.members.values()) m.replica.stop();
  }
}

/** Which way a promise went, without waiting for it. */
function track(p: Promise<Response>): { settled: 'pending' | 'resolved' | 'rejected'; error?: unknown } {
  const t: { settled: 'pending' | 'resolved' | 'rejected'; error?: unknown } = { settled: 'pending' };
  p.then(
    () => (t.settled = 'resolved'),
    (e: unknown) => {
      t.settled = 'rejected';
      t.error = e;
    },
  );
  return t;
}

/**
 * Replica 1 leads, proposes, and is cut off before its entry commits; 2 and 3 elect a leader, commit
 * past the proposal's index and compact their logs; the cut heals and replica 1 catches up by a
 * snapshot that covers the proposal's index.
 */
async function overtaken(c: TestCluster, propose: (r: Replica) => Promise<Response>): Promise<{ index: number; outcome: ReturnType<typeof track> }> {
  await c.until('replica 1 to lead', () => c.replica(1).isLeader);
  await c.tick(3);
  const old = c.replica(1);
  c.cut.add(1);
  const outcome = track(propose(old));
  await c.tick();
  const index = old.node.status.lastIndex;
  assert.equal(outcome.settled, 'pending', 'a cut-off leader cannot commit');

  await c.until('a leader of 2 and 3', () => c.leaderAmong([2, 3]) !== undefined);
  const leader = c.leaderAmong([2, 3])!;
  for (let i = 0; i < 5; i++) leader.propose(new Uint8Array([i])).catch(() => {});
  await c.tick(3);
  const committed = leader.node.status.commit;
  assert.ok(committed > index + 2, `the group committed past ${index} (commit ${committed})`);
  for (const id of [2, 3]) c.replica(id).compact(committed);
  await c.tick(2);
  assert.ok(leader.node.status.firstIndex > index + 1, 'the group compacted past the proposal');

  c.cut.delete(1);
  await c.until('replica 1 to install a snapshot', () => c.members.get(1)!.installed.length > 0);
  const snap = c.members.get(1)!.installed[0]!;
  assert.ok(snap >= index, `the snapshot (${snap}) covers the proposal (${index})`);
  await c.tick(2);
  return { index, outcome };
}

describe('a proposal overtaken by an installed snapshot', () => {
  it('settles with OutcomeUnknownError, not as dropped and not never', async () => {
    const c = new TestCluster();
    try {
      const { index, outcome } = await overtaken(c, (r) => r.propose(new Uint8Array([42])));
      assert.equal(outcome.settled, 'rejected', `the proposal at ${index} settled`);
      assert.ok(outcome.error instanceof OutcomeUnknownError, `rejected with ${String(outcome.error)}`);
      assert.ok(!(outcome.error instanceof DroppedError), 'not reported as definitely not applied');
      assert.match((outcome.error as Error).message, /may or may not have applied/);
    } finally {
      c.stop();
    }
  });

  it('settles a configuration proposal the same way', async () => {
    const c = new TestCluster();
    try {
      const { outcome } = await overtaken(c, (r) => r.proposeConf({ type: 'add-learner', node: 4 }));
      assert.equal(outcome.settled, 'rejected');
      assert.ok(outcome.error instanceof OutcomeUnknownError, `rejected with ${String(outcome.error)}`);
    } finally {
      c.stop();
    }
  });

  it('leaves proposals above the snapshot to their own entries', async () => {
    const c = new TestCluster();
    try {
      await c.until('replica 1 to lead', () => c.replica(1).isLeader);
      await c.tick(3);
      const r1 = c.replica(1);
      c.cut.add(1);
      // Many entries from the cut-off leader: the snapshot the others send covers the first ones only.
      const mine = Array.from({ length: 30 }, (_, i) => {
        const outcome = track(r1.propose(new Uint8Array([i])));
        return { index: r1.node.status.lastIndex, outcome };
      });
      await c.tick();
      await c.until('a leader of 2 and 3', () => c.leaderAmong([2, 3]) !== undefined);
      const leader = c.leaderAmong([2, 3])!;
      leader.propose(new Uint8Array([99])).catch(() => {});
      await c.tick(3);
      const committed = leader.node.status.commit;
      for (const id of [2, 3]) c.replica(id).compact(committed);
      await c.tick(2);
      c.cut.delete(1);
      await c.until('replica 1 to install a snapshot', () => c.members.get(1)!.installed.length > 0);
      const snap = c.members.get(1)!.installed[0]!;
      assert.ok(mine[0]!.index <= snap && mine.at(-1)!.index > snap, `the snapshot (${snap}) covers some proposals, not all`);
      // The new leader's later entries take the indexes above the snapshot.
      for (let i = 0; i < 40; i++) leader.propose(new Uint8Array([100 + i])).catch(() => {});
      await c.until('replica 1 to apply past its proposals', () => c.members.get(1)!.applied > mine.at(-1)!.index);
      for (const { index, outcome } of mine) {
        assert.equal(outcome.settled, 'rejected', `proposal at ${index} settled`);
        const want = index <= snap ? OutcomeUnknownError : DroppedError;
        assert.ok(outcome.error instanceof want, `proposal at ${index} (snapshot ${snap}): ${String(outcome.error)}`);
      }
    } finally {
      c.stop();
    }
  });
});
