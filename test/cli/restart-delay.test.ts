// kvs up restarts a replica that exited after 1 s, doubling up to 30 s while launches keep ending
// within a minute: a chaos run saw a replica with a damaged store restarted every second for good.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { restartDelayMs } from '../../src/cli/up-command.ts';

test('the restart delay doubles while launches fail quickly, and starts over after a long run', () => {
  const run = { startedAt: 0, failures: 0 };
  const delays: number[] = [];
  let now = 10;
  for (let i = 0; i < 8; i++) {
    run.startedAt = now;
    now += 500; // it exits half a second after each launch
    delays.push(restartDelayMs(run, now));
    now += delays.at(-1)!;
  }
  assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
  run.startedAt = now;
  assert.equal(restartDelayMs(run, now + 60_000), 1000, 'a launch that ran a minute restarts after 1 s');
});
