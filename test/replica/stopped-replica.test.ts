// A stopped replica (Replica.stop(), or a fatal storage error: the server's onFatal path) runs no
// Ready loop any more. A request made after that used to be proposed into the node's memory and
// wait out the whole request deadline for an apply that could never come, then be answered TIMEOUT.
// It never entered the log: it fails at once and the router answers UNAVAILABLE ("not applied").
// Proposals pending at the stop are another matter: other replicas may still commit them (TIMEOUT).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Replica, StoppedError, type ReplicaStorage } from '../../src/replica/replica.ts';
import type { ReplicaEnv } from '../../src/replica/env.ts';
import { defaultRaftConfig } from '../../src/raft/node.ts';
import type { SnapshotSource } from '../../src/raft/types.ts';
import type { Request } from '../../src/wire/index.ts';
import { callLocal, stubRouter } from '../support/stub-router.ts';

const TICK_MS = 10;
/** A deadline far off: a request answered before half of it was answered at once, not at the deadline. */
const FAR_MS = 60_000;
const put: Request = { op: 'put', key: Buffer.from('k'), value: Buffer.from('v'), clientId: 0n, seq: 0 };
const get: Request = { op: 'get', key: Buffer.from('k'), consistency: 'linearizable' } as Request;

/** A one-voter group's replica over an in-memory storage seam and a clock the test drives. */
function single(o: { failPersist?: () => boolean } = {}): { replica: Replica; tick: () => Promise<void>; fatal: unknown[] } {
  let now = 0;
  let nextId = 0;
  const timers = new Set<() => void>();
  const fatal: unknown[] = [];
  const env: ReplicaEnv = {
    now: () => now,
    every: (_ms, fn) => {
      timers.add(fn);
      return () => timers.delete(fn);
    },
    defer: (fn) => void setImmediate(fn),
    random: () => 0.5,
    incarnation: 1,
    nextId: () => ++nextId,
  };
  const snapshots: SnapshotSource = { capture: () => 0, read: () => ({ data: new Uint8Array(0), next: null }), release: () => {} };
  const storage: ReplicaStorage = {
    persist: () => (o.failPersist?.() ? Promise.reject(new Error('disk full')) : Promise.resolve()),
    apply: (_entries, onAnswers) => {
      onAnswers(new Map());
      return Promise.resolve();
    },
    commitSoon: () => {},
    clearBlank: () => {},
  };
  const replica = new Replica({
    raft: { ...defaultRaftConfig, id: 1, quietAfterTicks: 0 },
    snapshots,
    persisted: { hardState: { term: 0, vote: 0, commit: 0 }, base: { index: 0, term: 0, conf: { voters: [1], learners: [] } }, entries: [], applied: 0 },
    storage,
    env,
    send: () => {},
    tickMs: TICK_MS,
    onFatal: (e) => fatal.push(e),
  });
  replica.start();
  const tick = async (): Promise<void> => {
    now += TICK_MS;
    for (const fn of [...timers]) fn();
    for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
  };
  return { replica, tick, fatal };
}

async function leader(o: Parameters<typeof single>[0] = {}): Promise<ReturnType<typeof single>> {
  const s = single(o);
  for (let i = 0; i < 200 && !s.replica.isLeader; i++) await s.tick();
  assert.ok(s.replica.isLeader, 'the single replica became leader');
  assert.deepEqual(await s.replica.propose(Buffer.from('x')), { kind: 'ok' });
  return s;
}

describe('a stopped replica refuses new requests at once', () => {
  it('after stop(): propose, proposeConf and readBarrier fail with StoppedError; the router answers UNAVAILABLE at once', async () => {
    const { replica } = await leader();
    // Pending at the stop (the Ready loop has not run yet): outcome unknown, answered TIMEOUT.
    const router = stubRouter({ replica: replica as never });
    const pending = callLocal(router, put);
    replica.stop();
    const p = await pending;
    assert.equal(p.kind === 'error' && p.error.code, 'TIMEOUT', JSON.stringify(p));

    await assert.rejects(replica.propose(Buffer.from('y')), StoppedError);
    await assert.rejects(replica.proposeConf({ type: 'add-learner', node: 2 }), StoppedError);
    await assert.rejects(replica.readBarrier(), StoppedError);

    const t0 = Date.now();
    const w = await callLocal(router, put, { deadline: Date.now() + FAR_MS });
    assert.equal(w.kind === 'error' && w.error.code, 'UNAVAILABLE', JSON.stringify(w));
    assert.match(w.kind === 'error' ? w.error.message : '', /replica stopped/);
    const r = await callLocal(router, get, { deadline: Date.now() + FAR_MS });
    assert.equal(r.kind === 'error' && r.error.code, 'UNAVAILABLE', JSON.stringify(r));
    assert.ok(Date.now() - t0 < FAR_MS / 2, `answered at once, not at the deadline (${Date.now() - t0} ms)`);
  });

  it('after a fatal storage error: the pending proposal stays pending (TIMEOUT at its deadline), a new one fails at once', async () => {
    let fail = false;
    const s = await leader({ failPersist: () => fail });
    fail = true;
    const router = stubRouter({ replica: s.replica as never });
    const pending = callLocal(router, put, { deadline: Date.now() + 300 });
    for (let i = 0; i < 5 && s.fatal.length === 0; i++) await s.tick();
    assert.equal(s.fatal.length, 1, 'the replica stopped on the failed persist');
    const p = await pending;
    assert.equal(p.kind === 'error' && p.error.code, 'TIMEOUT', JSON.stringify(p));

    const t0 = Date.now();
    const w = await callLocal(router, put, { deadline: Date.now() + FAR_MS });
    assert.equal(w.kind === 'error' && w.error.code, 'UNAVAILABLE', JSON.stringify(w));
    assert.ok(Date.now() - t0 < FAR_MS / 2, `answered at once, not at the deadline (${Date.now() - t0} ms)`);
  });
});
