// Seeds that once failed (regressions.ts). Open core bugs run as todo: they are reported, and turn
// into ordinary passing tests once the bug is fixed and the entry marked `fixed`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { knownFailures } from './regressions.ts';
import { runSeed } from './run.ts';
import { targets } from './targets.ts';

for (const k of knownFailures) {
  const name = `seed ${k.seed}${k.nodes ? ` (${k.nodes} nodes)` : ''}${k.target ? ` [${k.target} faults]` : ''}: ${k.invariant} — ${k.note}`;
  test(name, k.status === 'open' ? { todo: 'open core bug' } : {}, async () => {
    const r = await runSeed(k.seed, {
      ...(k.nodes ? { nodes: k.nodes } : {}),
      ...(k.target ? { tweak: targets[k.target].tweak } : {}),
    });
    assert.ok(r.ok, `${r.violation?.invariant}: ${r.violation?.detail}`);
  });
}
