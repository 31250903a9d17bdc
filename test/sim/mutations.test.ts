// Each deliberate bug (src/raft/mutations.ts, src/replica/mutations.ts) must be caught within a bounded number of seeds,
// with the fault mix aimed at it (targets.ts). A seed counts only if the same seed passes with the
// bug switched off, so the catch is the bug's doing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resetMutations } from '../../src/raft/mutations.ts';
import { resetShellMutations } from '../../src/replica/mutations.ts';
import { resetStorageMutations } from '../../src/storage/mutations.ts';
import { runSeed } from './run.ts';
import { setMutation, targets, type MutationName } from './targets.ts';

const MAX_SEEDS = 40;

for (const name of Object.keys(targets) as MutationName[]) {
  test(`mutation ${name} is caught within ${MAX_SEEDS} seeds`, async () => {
    const { tweak } = targets[name];
    let caught: string | undefined;
    try {
      for (let seed = 1; seed <= MAX_SEEDS && caught === undefined; seed++) {
        setMutation(name, true);
        const bad = await runSeed(seed, { tweak });
        setMutation(name, false);
        if (bad.ok) continue;
        if ((await runSeed(seed, { tweak })).ok) caught = `seed ${seed}: ${bad.violation?.invariant}`;
      }
    } finally {
      resetMutations();
      resetShellMutations();
      resetStorageMutations();
    }
    assert.ok(caught, `no seed in 1..${MAX_SEEDS} caught ${name}`);
  });
}
