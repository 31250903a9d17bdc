// Follower reads that arrive before their replica's queued ReadIndex leaves share it (one message
// each way for all of them). With many clients reading through followers, joins must happen and
// every history must stay linearizable; the mutation test readJoinsSentBarrier checks that joining
// after the message left is caught.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSeed } from './run.ts';

test('follower reads share queued ReadIndex requests and stay linearizable', async () => {
  let joined = 0;
  for (let seed = 1; seed <= 20; seed++) {
    const r = await runSeed(seed, {
      tweak: (p) => {
        p.followerReadP = 0.9;
        p.leaseReadP = 0;
        p.staleReadP = 0;
        p.getShare = 0.8;
        p.clients = 10;
      },
    });
    assert.ok(r.ok, `seed ${seed}: ${r.violation?.invariant} ${r.violation?.detail}`);
    joined += r.stats['reads joined'] ?? 0;
  }
  assert.ok(joined > 0, 'some follower reads joined a queued ReadIndex');
});
