// A bounded sweep for `make test`: every seed must keep every invariant, show liveness after the
// faults heal, and leave a linearizable history. (`make sim` sweeps thousands.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { knownFailures } from './regressions.ts';
import { replayCommand, runSeed } from './run.ts';

const FROM = 1;
const SEEDS = 120;

test(`seeds ${FROM}..${FROM + SEEDS - 1} (3 and 5 nodes, mixed faults) break no invariant`, async () => {
  const skip = new Set(knownFailures.filter((k) => k.status === 'open' && k.target === undefined && k.nodes === undefined).map((k) => k.seed));
  const failed: string[] = [];
  let ops = 0;
  for (let seed = FROM; seed < FROM + SEEDS; seed++) {
    if (skip.has(seed)) continue;
    const r = await runSeed(seed);
    ops += r.ops;
    if (!r.ok) failed.push(`seed ${seed}: ${r.violation?.invariant}: ${r.violation?.detail}\n  replay: ${replayCommand(seed)}`);
  }
  assert.deepEqual(failed, []);
  assert.ok(ops > SEEDS * 50, 'clients got work done');
});
