// systemEnv.every: the replicas of one process that tick at the same period share one timer, so
// they run in the same wake-up; stopping one leaves the others ticking.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { systemEnv } from '../../src/replica/env.ts';
import { waitFor } from '../support/wait.ts';

test('callers of one period run in the same timer callback; each stops on its own', async () => {
  const seen: string[] = [];
  const stopA = systemEnv.every(7, () => seen.push('a'));
  const stopB = systemEnv.every(7, () => seen.push('b'));
  // The same function twice is two callers.
  const twice = (): void => void seen.push('c');
  const stopC1 = systemEnv.every(7, twice);
  const stopC2 = systemEnv.every(7, twice);
  // Keep the process alive (the shared timer is unref'd) while we wait: for rounds, not for a time
  // (a loaded machine may run a single late wake-up in 60 ms).
  await waitFor('two rounds', () => seen.length >= 8, 20_000, 5);
  stopC2();
  const rounds = seen.length / 4;
  assert.ok(Number.isInteger(rounds) && rounds >= 2, `whole rounds only: ${seen.join('')}`);
  for (let i = 0; i < seen.length; i += 4) assert.deepEqual(seen.slice(i, i + 4), ['a', 'b', 'c', 'c'], 'one callback runs every caller, in order');
  const before = seen.length;
  stopA();
  await waitFor('b and c to run again', () => seen.length >= before + 4, 20_000, 5);
  const later = seen.slice(before);
  assert.ok(!later.includes('a'), `a stopped, b and c go on: ${later.join('')}`);
  stopB();
  stopC1();
  const end = seen.length;
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(seen.length, end, 'all stopped: nothing runs');
});
