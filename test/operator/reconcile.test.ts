// The reconcile core (src/operator/reconcile.ts): a table of its transitions, then properties over
// random sequences of spec changes, faults and operator crashes in a model world (world.ts):
// every action is safe when carried out, the same inputs give the same actions, and once the spec
// stops changing and faults stop the store converges to the spec with nothing left to do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadXxh64, type Xxh64 } from '../../src/partition/index.ts';
import { plan, templateRevision, type Action, type ReconcileInput } from '../../src/operator/reconcile.ts';
import { parseSpec, type KVStoreSpec } from '../../src/operator/spec.ts';
import { computeStatus } from '../../src/operator/status.ts';
import { prng } from '../partition/prng.ts';
import { addr, World } from './world.ts';

const h64: Xxh64 = await loadXxh64();
const spec = (over: Record<string, unknown> = {}): KVStoreSpec => parseSpec({ shards: 3, replicas: 3, image: 'kvs:1', ...over });

/** Runs operator and world together (no faults) until the plan is empty; returns the actions taken. */
function settle(w: World, s: KVStoreSpec, rng = prng(7), maxRounds = 500): Action[] {
  const taken: Action[] = [];
  for (let i = 0; i < maxRounds; i++) {
    const p = plan(w.input(s));
    if (p.actions.length === 0 && w.converged(s, templateRevision(s))) return taken;
    for (const a of p.actions) {
      if (a.kind === 'add-member' || a.kind === 'remove-member') w.inFlight.set(a.group, a);
      w.act(a, rng, false);
      taken.push(a);
    }
    w.tick(rng, false);
  }
  assert.fail(`did not converge in ${maxRounds} rounds; last plan ${JSON.stringify(plan(w.input(s)))}`);
}

const kinds = (as: Action[]): string[] => as.map((a) => `${a.kind}:${'group' in a ? a.group : ''}`);

test('an empty namespace: the placement group is created first', () => {
  const w = new World(h64);
  const p = plan(w.input(spec()));
  assert.deepEqual(kinds(p.actions), ['apply-group:0']);
  assert.equal(p.phase, 'Creating');
  assert.deepEqual(p.actions[0], { kind: 'apply-group', group: 0, replicas: 3, image: 'kvs:1', revision: templateRevision(spec()), joinFrom: 3, retention: 'Retain' });
});

test('the placement group not answering: no store action, the reason is given', () => {
  const w = new World(h64);
  w.act(plan(w.input(spec())).actions[0]!, prng(1), false);
  const p = plan(w.input(spec()));
  assert.deepEqual(p.actions, []);
  assert.match(p.waiting[0]!, /placement group kv-placement does not answer/);
});

test('creation: shard groups 1..N bootstrapped together, then the first configuration with their addresses', () => {
  const w = new World(h64);
  const s = spec();
  const taken = settle(w, s);
  const applies = taken.filter((a) => a.kind === 'apply-group' && a.group > 0);
  assert.deepEqual(
    applies.slice(0, 3).map((a) => a.kind === 'apply-group' && [a.group, a.replicas, a.joinFrom]),
    [
      [1, 3, 3],
      [2, 3, 3],
      [3, 3, 3],
    ],
  );
  const init = taken.find((a) => a.kind === 'init-cluster');
  assert.ok(init && init.kind === 'init-cluster');
  assert.deepEqual(init.groups[1], { id: 2, replicas: [0, 1, 2].map((o) => ({ id: 201 + o, address: addr(2, o) })) });
  // Configured groups are switched to "every new replica joins" without a restart.
  assert.ok(taken.some((a) => a.kind === 'apply-group' && a.group === 1 && a.joinFrom === 0));
  assert.deepEqual(plan(w.input(s)).actions, []);
  assert.equal(plan(w.input(s)).phase, 'Ready');
});

test('shards 3 → 4: the new group is started and led before the reshard; then nothing is deleted', () => {
  const w = new World(h64);
  settle(w, spec());
  const s = spec({ shards: 4 });
  const first = plan(w.input(s));
  assert.deepEqual(kinds(first.actions), ['apply-group:4']);
  assert.equal(first.phase, 'Resharding');
  const taken = settle(w, s);
  const rs = taken.find((a) => a.kind === 'start-reshard');
  assert.ok(rs && rs.kind === 'start-reshard');
  assert.deepEqual(
    rs.groups.map((g) => g.id),
    [1, 2, 3, 4],
  );
  assert.ok(taken.indexOf(rs) > taken.findIndex((a) => a.kind === 'apply-group' && a.group === 4));
  assert.ok(!taken.some((a) => a.kind === 'delete-group'));
});

test('moves in progress: nothing else happens, the status says how many partitions move', () => {
  const w = new World(h64);
  settle(w, spec());
  const s = spec({ shards: 2 });
  const p1 = plan(w.input(s));
  assert.deepEqual(kinds(p1.actions), ['start-reshard:']);
  w.act(p1.actions[0]!, prng(1), false);
  const input = w.input(spec({ shards: 2, replicas: 5, image: 'kvs:2' }));
  const p2 = plan(input);
  assert.deepEqual(p2.actions, []);
  assert.equal(p2.phase, 'Resharding');
  const st = computeStatus(input, p2, undefined, 2, new Date(0));
  assert.equal(st.partitionsMoving, w.config!.moves.length);
  assert.equal(st.conditions!.find((c) => c.type === 'Resharding')!.status, 'True');
  assert.equal(st.conditions!.find((c) => c.type === 'Ready')!.status, 'False');
});

test('a group that still owns partitions or has hand-offs is never deleted; drained ones are, per retention', () => {
  const w = new World(h64);
  settle(w, spec());
  const s = spec({ shards: 2, storage: { retention: 'Delete' } });
  w.act(plan(w.input(s)).actions[0]!, prng(1), false);
  assert.ok(!plan(w.input(s)).actions.some((a) => a.kind === 'delete-group'));
  const taken = settle(w, s);
  const del = taken.filter((a) => a.kind === 'delete-group');
  assert.deepEqual(del, [{ kind: 'delete-group', group: 3, deleteVolumes: true }]);
});

test('a removed group with retained volumes: its id is never reused', () => {
  const w = new World(h64);
  settle(w, spec());
  settle(w, spec({ shards: 2 }));
  assert.deepEqual([...w.retained], [3]);
  const taken = settle(w, spec({ shards: 3 }));
  assert.deepEqual(
    taken.filter((a) => a.kind === 'apply-group' && a.replicas === 3 && a.joinFrom === 3).map((a) => a.kind === 'apply-group' && a.group),
    [4],
  );
});

test('replicas 3 → 5: one replica at a time, the StatefulSet grows first, the member is added once its pod runs', () => {
  const w = new World(h64);
  settle(w, spec({ shards: 1 }));
  const s = spec({ shards: 1, replicas: 5 });
  const taken = settle(w, s).filter((a) => a.kind !== 'apply-group' || a.group === 1);
  assert.deepEqual(
    taken.map((a) => (a.kind === 'apply-group' ? `sts=${a.replicas}` : a.kind === 'add-member' ? `add ${a.replicaId}` : a.kind)),
    ['sts=4', 'add 104', 'sts=5', 'add 105'],
  );
  assert.deepEqual(
    w.config!.groups[0]!.replicas.map((r) => r.id),
    [101, 102, 103, 104, 105],
  );
});

test('replicas 5 → 3: the highest member is removed before its pod, never below a ready quorum', () => {
  const w = new World(h64);
  settle(w, spec({ shards: 1, replicas: 5 }));
  const s = spec({ shards: 1, replicas: 3 });
  // Two of the remaining four down: removing one would leave 2 ready of 4 (quorum 3).
  w.groups.get(1)!.pods.get(0)!.running = false;
  w.groups.get(1)!.pods.get(1)!.running = false;
  if ([101, 102].includes(w.groups.get(1)!.leader)) w.groups.get(1)!.leader = 103;
  const blocked = plan(w.input(s));
  assert.deepEqual(blocked.actions, []);
  assert.match(blocked.waiting.join(), /without a ready quorum/);
  w.groups.get(1)!.pods.get(0)!.running = true;
  w.groups.get(1)!.pods.get(1)!.running = true;
  const taken = settle(w, s).filter((a) => a.kind !== 'apply-group' || a.group === 1);
  assert.deepEqual(
    taken.map((a) => (a.kind === 'apply-group' ? `sts=${a.replicas}` : a.kind === 'remove-member' ? `remove ${a.replicaId}` : a.kind)),
    ['remove 105', 'remove 104', 'sts=3'],
  );
});

test('a removed replica\'s volume still present: the group does not grow onto it', () => {
  const w = new World(h64);
  settle(w, spec({ shards: 1 }));
  const g = w.groups.get(1)!;
  g.volumes.add(3);
  const p = plan(w.input(spec({ shards: 1, replicas: 5 })));
  assert.deepEqual(p.actions, []);
  assert.match(p.waiting[0]!, /volume of removed replica kv-shard-1-3/);
});

test('image change: group by group, followers first, the leader last, waiting for each pod to be ready', () => {
  const w = new World(h64);
  settle(w, spec({ shards: 2 }));
  const s = spec({ shards: 2, image: 'kvs:2' });
  const leaders = new Map([...w.groups].map(([id, g]) => [id, g.leader]));
  const rng = prng(3);
  const restarts: string[] = [];
  for (let i = 0; i < 400 && !w.converged(s, templateRevision(s)); i++) {
    const p = plan(w.input(s));
    assert.ok(p.actions.length <= 1, `one action at a time while rolling: ${JSON.stringify(p.actions)}`);
    for (const a of p.actions) {
      if (a.kind === 'delete-pod') {
        restarts.push(`${a.pod}${a.leader ? '*' : ''}`);
        // Nothing else of the group is down or restarting at that moment.
        const g = w.groups.get(a.group)!;
        assert.ok([...g.pods].every(([o, pod]) => !pod.terminating && (pod.running || a.pod.endsWith(`-${o}`))));
      }
      w.act(a, rng, false);
    }
    w.tick(rng, false);
  }
  assert.ok(w.converged(s, templateRevision(s)));
  // Groups in order placement, 1, 2; within each, the leader's pod last (marked *).
  const groupsInOrder = restarts.map((r) => r.replace(/-\d\*?$/, ''));
  assert.deepEqual([...new Set(groupsInOrder)], ['kv-placement', 'kv-shard-1', 'kv-shard-2']);
  for (const name of new Set(groupsInOrder)) {
    const own = restarts.filter((r) => r.startsWith(`${name}-`));
    assert.equal(own.length, 3, `${name}: ${own}`);
    assert.ok(own[2]!.endsWith('*') && !own[0]!.endsWith('*') && !own[1]!.endsWith('*'), `${name}: leader not last: ${own}`);
  }
  assert.ok(leaders.size > 0);
});

test('a settings change alone (the ConfigMap the operator writes) rolls every pod, the leader last', () => {
  const w = new World(h64);
  const s = spec({ shards: 1 });
  const input = (settings: string): ReconcileInput => ({ ...w.input(s), settings });
  // Settled with the settings of one operator version ...
  for (let i = 0; i < 500 && (plan(input('a')).actions.length > 0 || !w.converged(s, templateRevision(s, 'a'))); i++) {
    for (const a of plan(input('a')).actions) w.act(a, prng(i), false);
    w.tick(prng(i), false);
  }
  assert.ok(w.converged(s, templateRevision(s, 'a')));
  assert.notEqual(templateRevision(s, 'b'), templateRevision(s, 'a'));
  // ... then another writes other settings with the same spec: new templates, every pod restarted.
  const first = plan(input('b'));
  assert.deepEqual(kinds(first.actions), ['apply-group:0']);
  assert.equal(first.actions[0]!.kind === 'apply-group' && first.actions[0]!.revision, templateRevision(s, 'b'));
  const restarts: string[] = [];
  const rng = prng(5);
  for (let i = 0; i < 400 && !w.converged(s, templateRevision(s, 'b')); i++) {
    for (const a of plan(input('b')).actions) {
      if (a.kind === 'delete-pod') restarts.push(`${a.pod}${a.leader ? '*' : ''}`);
      w.act(a, rng, false);
    }
    w.tick(rng, false);
  }
  assert.ok(w.converged(s, templateRevision(s, 'b')));
  assert.equal(restarts.length, 6, `every pod once: ${restarts}`);
  for (const name of ['kv-placement', 'kv-shard-1']) assert.ok(restarts.filter((r) => r.startsWith(`${name}-`)).at(-1)!.endsWith('*'), `${name}: leader last: ${restarts}`);
  assert.deepEqual(plan(input('b')).actions, []);
});

test('a new operator version whose group template differs rolls every pod, the leader last; the same template changes nothing', () => {
  const w = new World(h64);
  const s = spec({ shards: 1 });
  const input = (template: string): ReconcileInput => ({ ...w.input(s), settings: 's', template });
  const revision = (template: string): string => templateRevision(s, 's', template);
  // Settled with the template of one operator version ...
  for (let i = 0; i < 500 && (plan(input('a')).actions.length > 0 || !w.converged(s, revision('a'))); i++) {
    for (const a of plan(input('a')).actions) w.act(a, prng(i), false);
    w.tick(prng(i), false);
  }
  assert.ok(w.converged(s, revision('a')));
  // ... the same version restarted (the same template hash): nothing to apply, nobody restarted.
  assert.equal(revision('a'), templateRevision(s, 's', 'a'));
  assert.deepEqual(plan(input('a')).actions, []);
  assert.notEqual(revision('b'), revision('a'));
  assert.notEqual(revision('a'), templateRevision(s, 's'), 'the template hash is part of the revision');
  // ... then another version with another template and the same spec: new templates, every pod restarted.
  const first = plan(input('b'));
  assert.deepEqual(kinds(first.actions), ['apply-group:0']);
  assert.equal(first.actions[0]!.kind === 'apply-group' && first.actions[0]!.revision, revision('b'));
  const restarts: string[] = [];
  const rng = prng(5);
  for (let i = 0; i < 400 && !w.converged(s, revision('b')); i++) {
    for (const a of plan(input('b')).actions) {
      if (a.kind === 'delete-pod') restarts.push(`${a.pod}${a.leader ? '*' : ''}`);
      w.act(a, rng, false);
    }
    w.tick(rng, false);
  }
  assert.ok(w.converged(s, revision('b')));
  assert.equal(restarts.length, 6, `every pod once: ${restarts}`);
  for (const name of ['kv-placement', 'kv-shard-1']) assert.ok(restarts.filter((r) => r.startsWith(`${name}-`)).at(-1)!.endsWith('*'), `${name}: leader last: ${restarts}`);
  assert.deepEqual(plan(input('b')).actions, []);
});

test('storage.retention changed: every StatefulSet re-applied with the new policy at once, no pod restarted', () => {
  const w = new World(h64);
  const del = spec({ shards: 2, storage: { retention: 'Delete' } });
  settle(w, del);
  const keep = spec({ shards: 2, storage: { retention: 'Retain' } });
  // Not a pod template change: same revision.
  assert.equal(templateRevision(keep), templateRevision(del));
  const p = plan(w.input(keep));
  // Before: no action at all (revision, replicas and founders unchanged), so the StatefulSets kept
  // whenDeleted: Delete and deleting the KVStore deleted every volume claim.
  assert.deepEqual(kinds(p.actions), ['apply-group:0', 'apply-group:1', 'apply-group:2']);
  for (const a of p.actions) {
    assert.ok(a.kind === 'apply-group');
    const g = w.groups.get(a.group)!;
    assert.deepEqual([a.retention, a.revision, a.replicas, a.joinFrom], ['Retain', templateRevision(del), g.replicas, g.joinFrom]);
  }
  const taken = settle(w, keep);
  assert.ok(!taken.some((a) => a.kind === 'delete-pod'), `no pod restarted: ${kinds(taken)}`);
  for (const g of w.groups.values()) assert.equal(g.retention, 'Retain');
  assert.deepEqual(plan(w.input(keep)).actions, []);
});

test('storage.retention changed while partitions move: applied at once, the reshard left alone', () => {
  const w = new World(h64);
  settle(w, spec({ shards: 2, storage: { retention: 'Delete' } }));
  const keep = spec({ shards: 3, storage: { retention: 'Retain' } });
  const rng = prng(11);
  for (let i = 0; i < 200 && !(w.config && w.config.moves.length > 0); i++) {
    for (const a of plan(w.input({ ...keep, storage: { ...keep.storage, retention: 'Delete' } })).actions) w.act(a, rng, false);
    w.tick(rng, false);
  }
  assert.ok(w.config!.moves.length > 0, 'a reshard under way');
  const p = plan(w.input(keep));
  assert.equal(p.phase, 'Resharding');
  assert.deepEqual(kinds(p.actions), ['apply-group:0', 'apply-group:1', 'apply-group:2', 'apply-group:3']);
  assert.ok(p.actions.every((a) => a.kind === 'apply-group' && a.retention === 'Retain' && a.revision === templateRevision(keep)));
});

test('storage.size or storageClassName changed: no new revision, nothing re-applied or restarted (new groups only)', () => {
  const w = new World(h64);
  const s = spec({ shards: 2 });
  settle(w, s);
  for (const storage of [{ size: '20Gi' }, { storageClassName: 'ssd' }, { size: '1Ti', storageClassName: '' }]) {
    const next = spec({ shards: 2, storage });
    // Before: both were part of the revision, so every pod was restarted for a claim template
    // change that never reaches an existing StatefulSet.
    assert.equal(templateRevision(next), templateRevision(s), JSON.stringify(storage));
    assert.deepEqual(plan(w.input(next)).actions, [], JSON.stringify(storage));
  }
});

test('a restart that would break quorum waits', () => {
  const w = new World(h64);
  settle(w, spec({ shards: 1 }));
  const s = spec({ shards: 1, image: 'kvs:2' });
  w.act(plan(w.input(s)).actions[0]!, prng(1), false); // the new template
  const pl = w.groups.get(0)!;
  const follower = [0, 1, 2].find((o) => 1 + o !== pl.leader)!;
  pl.pods.get(follower)!.revision = templateRevision(s); // already restarted, but crashed since
  pl.pods.get(follower)!.running = false;
  const p = plan(w.input(s));
  assert.deepEqual(p.actions, []);
  assert.match(p.waiting[0]!, /runs the new revision but is not ready/);
});

test('a membership change recorded in flight is resumed first after an operator restart', () => {
  const w = new World(h64);
  settle(w, spec({ shards: 1 }));
  const s = spec({ shards: 1, replicas: 5 });
  let p = plan(w.input(s));
  w.act(p.actions[0]!, prng(1), false); // sts=4
  for (let i = 0; i < 20; i++) w.tick(prng(i), false);
  p = plan(w.input(s));
  const add = p.actions[0]!;
  assert.equal(add.kind, 'add-member');
  w.inFlight.set(1, add as Extract<Action, { kind: 'add-member' }>);
  w.act(add, prng(1), true); // the operator dies half-way
  // A new operator, even with the spec changed back, first finishes the change in flight.
  const resumed = plan(w.input(spec({ shards: 1, replicas: 3 })));
  assert.deepEqual(resumed.actions, [add]);
  assert.match(resumed.step, /resumed/);
  settle(w, spec({ shards: 1, replicas: 3 }));
});

test('stuck steps turn Degraded with the reason; a changing step does not', () => {
  const w = new World(h64);
  w.act(plan(w.input(spec())).actions[0]!, prng(1), false);
  const input = w.input(spec());
  const p = plan(input);
  const t0 = new Date('2026-01-01T00:00:00Z');
  const s0 = computeStatus(input, p, undefined, 1, t0);
  const s1 = computeStatus(input, p, s0, 1, new Date(t0.getTime() + 5 * 60_000));
  assert.equal(s1.conditions!.find((c) => c.type === 'Degraded')!.status, 'False');
  const s2 = computeStatus(input, p, s1, 1, new Date(t0.getTime() + 11 * 60_000));
  const d = s2.conditions!.find((c) => c.type === 'Degraded')!;
  assert.equal(d.status, 'True');
  assert.equal(d.reason, 'StepStuck');
  assert.match(d.message, /does not answer/);
  const other = { ...p, step: 'something else' };
  const s3 = computeStatus(input, other, s1, 1, new Date(t0.getTime() + 11 * 60_000));
  assert.notEqual(s3.conditions!.find((c) => c.type === 'Degraded')!.reason, 'StepStuck');
});

/** One random run: spec changes at random moments, faults, operator crashes mid-change. */
function randomRun(seed: number): void {
  const rng = prng(seed);
  const w = new World(h64, 32);
  const pick = <T>(xs: T[]): T => xs[rng.below(xs.length)]!;
  let s = spec({ shards: 1 + rng.below(4), replicas: pick([1, 3, 5]) });
  const rounds = 150 + rng.below(150);
  for (let i = 0; i < rounds + 600; i++) {
    const calm = i >= rounds; // after `rounds`: no more spec changes or faults
    if (!calm && rng.below(25) === 0) s = spec({ shards: 1 + rng.below(4), replicas: pick([1, 3, 5]), image: pick(['kvs:1', 'kvs:2', 'kvs:3']), storage: { retention: pick(['Retain', 'Delete']) } });
    const input: ReconcileInput = w.input(s);
    const p = plan(input);
    assert.deepEqual(plan(structuredClone(input)), p, `seed ${seed} round ${i}: not idempotent`);
    const perGroup = new Map<number, number>();
    for (const a of p.actions) if ('group' in a) perGroup.set(a.group, (perGroup.get(a.group) ?? 0) + 1);
    for (const [g, n] of perGroup) assert.ok(n <= 1, `seed ${seed} round ${i}: ${n} actions for group ${g}: ${JSON.stringify(p.actions)}`);
    if (p.actions.some((a) => a.kind === 'init-cluster' || a.kind === 'start-reshard')) assert.ok(!p.actions.some((a) => a.kind === 'add-member' || a.kind === 'remove-member' || a.kind === 'delete-pod'));
    for (const a of p.actions) {
      if (a.kind === 'add-member' || a.kind === 'remove-member') w.inFlight.set(a.group, a);
      try {
        w.act(a, rng, !calm && rng.below(5) === 0);
      } catch (e) {
        throw new Error(`seed ${seed} round ${i}: ${(e as Error).message}\nspec ${JSON.stringify(s)}\nrecent ${w.log.slice(-40).join('\n')}`, { cause: e });
      }
    }
    try {
      w.tick(rng, !calm);
    } catch (e) {
      throw new Error(`seed ${seed} round ${i} (tick): ${(e as Error).message}\nspec ${JSON.stringify(s)}\nrecent ${w.log.slice(-40).join('\n')}`, { cause: e });
    }
    if (calm && w.converged(s, templateRevision(s))) {
      const after = plan(w.input(s));
      if (after.actions.length > 0) continue; // e.g. the bootstrap marker still to flip
      assert.equal(after.phase, 'Ready', `seed ${seed}: converged but phase ${after.phase}: ${after.step}; ${after.waiting.join('; ')}`);
      return;
    }
  }
  assert.fail(`seed ${seed}: did not converge to ${JSON.stringify({ shards: s.shards, replicas: s.replicas, image: s.image })}; plan ${JSON.stringify(plan(w.input(s)))}`);
}

test('property: random spec changes, faults and operator crashes: safe, idempotent, convergent (300 seeds)', () => {
  for (let seed = 1; seed <= 300; seed++) randomRun(seed);
});


