// Several Raft groups per simulated process, as `kvs up` hosts them: every machine runs a replica of
// each group on one clock and one shared storage environment, crashes take all of its groups down
// at once (losing each one's unsynced writes), and a cut link cuts every group's traffic. Each group
// must keep every invariant, recover after healing and leave a linearizable history.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resetShellMutations } from '../../src/replica/mutations.ts';
import { replayCommand, runSeed } from './run.ts';
import { setMutation, targets } from './targets.ts';

const GROUPS = 3;
const FROM = 1;
const SEEDS = 16;

test(`seeds ${FROM}..${FROM + SEEDS - 1} with ${GROUPS} groups per process break no invariant`, async () => {
  const failed: string[] = [];
  let ops = 0;
  let crashes = 0;
  for (let seed = FROM; seed < FROM + SEEDS; seed++) {
    const r = await runSeed(seed, { groups: GROUPS });
    ops += r.ops;
    crashes += Object.entries(r.stats).filter(([k]) => k.startsWith('crashes')).reduce((n, [, v]) => n + v, 0);
    if (!r.ok) failed.push(`seed ${seed}: ${r.violation?.invariant}: ${r.violation?.detail}\n  replay: ${replayCommand(seed, ` --groups ${GROUPS}`)}`);
  }
  assert.deepEqual(failed, []);
  assert.ok(ops > SEEDS * GROUPS * 50, 'clients of every group got work done');
  assert.ok(crashes > SEEDS, 'processes crashed, taking their groups down');
});

test('a seed with several groups replays to the same trace', async () => {
  const a = await runSeed(5, { groups: GROUPS, trace: true, skipLinearizability: true });
  const b = await runSeed(5, { groups: GROUPS, trace: true, skipLinearizability: true });
  assert.equal(a.digest, b.digest);
  const lines = a.lines ?? [];
  assert.deepEqual(lines, b.lines ?? []);
  for (let g = 1; g <= GROUPS; g++) assert.ok(lines.some((l) => l.includes(` g${g} n`)), `group ${g} shows in the trace`);
});

test('a deliberate bug (acknowledging before the sync) is still caught with several groups per process', async () => {
  const { tweak } = targets.ackBeforeSync;
  let caught: string | undefined;
  try {
    for (let seed = 1; seed <= 40 && caught === undefined; seed++) {
      setMutation('ackBeforeSync', true);
      const bad = await runSeed(seed, { groups: GROUPS, tweak });
      setMutation('ackBeforeSync', false);
      if (bad.ok) continue;
      if ((await runSeed(seed, { groups: GROUPS, tweak })).ok) caught = `seed ${seed}: ${bad.violation?.invariant}`;
    }
  } finally {
    resetShellMutations();
  }
  assert.ok(caught, 'no seed in 1..40 caught ackBeforeSync with several groups');
});
