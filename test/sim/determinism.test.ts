// One seed fixes everything: the same seed gives the same trace, byte for byte.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSeed } from './run.ts';

test('a seed replays to the same trace, byte for byte', async () => {
  for (const seed of [7, 8]) {
    const a = await runSeed(seed, { trace: true });
    const b = await runSeed(seed, { trace: true });
    const ta = (a.lines ?? []).join('\n');
    assert.ok(ta.length > 10_000, 'a real trace');
    assert.equal(ta, (b.lines ?? []).join('\n'));
    assert.equal(a.digest, b.digest);
  }
});

test('tracing does not change the run, and seeds differ', async () => {
  const digests = new Set<string>();
  for (let seed = 20; seed < 30; seed++) {
    const quiet = await runSeed(seed, { skipLinearizability: true });
    const traced = await runSeed(seed, { trace: true, skipLinearizability: true });
    assert.equal(quiet.digest, traced.digest, `seed ${seed}`);
    assert.equal(quiet.events, traced.events);
    digests.add(quiet.digest);
  }
  assert.equal(digests.size, 10);
});
