// kvs up restarts a replica that exited after 1 s, doubling up to 30 s while launches keep failing
// to start: a chaos run saw a replica with a damaged store restarted every second for good. Only a
// failed start counts: a replica that had started and was then killed from outside (kill -9 of its
// host process) used to count as well, and the third kill within a minute waited 4 s, later ones
// up to 30 s.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { START_GRACE_MS, restartDelayMs, type Run } from '../../src/cli/up-command.ts';

test('the restart delay doubles while launches fail quickly, and starts over after a long run', () => {
  const run: Run = { startedAt: 0, started: false, failures: 0 };
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

test('a replica that had started and is killed again and again restarts after 1 s each time', () => {
  const run: Run = { startedAt: 0, started: false, failures: 0 };
  let now = 0;
  const delays: number[] = [];
  for (let i = 0; i < 6; i++) {
    run.startedAt = now;
    run.started = false;
    now += 300;
    run.started = true; // it reported that it listens
    now += 2000; // then kill -9, two seconds after its launch
    delays.push(restartDelayMs(run, now, 'SIGKILL'));
    now += delays.at(-1)!;
  }
  assert.deepEqual(delays, [1000, 1000, 1000, 1000, 1000, 1000]);
});

test('without a report, a launch that ran the start grace period counts as started', () => {
  const run: Run = { startedAt: 0, started: false, failures: 3 };
  assert.equal(restartDelayMs(run, START_GRACE_MS - 1), 8000, 'the 4th failed start in a row');
  run.startedAt = 100_000;
  assert.equal(restartDelayMs(run, 100_000 + START_GRACE_MS), 1000);
  assert.equal(run.failures, 0);
});

test('a failed start after an outside kill counts from one again', () => {
  const run: Run = { startedAt: 0, started: true, failures: 2 };
  assert.equal(restartDelayMs(run, 2000, 'SIGKILL'), 1000, 'the kill of a started replica');
  run.startedAt = 3000;
  run.started = false;
  assert.equal(restartDelayMs(run, 3500), 1000, 'its first failed start');
  run.startedAt = 4500;
  assert.equal(restartDelayMs(run, 5000), 2000, 'its second');
});

// A replica that listens and then fails on its own at once (a store damaged past what the start
// reads, a fatal storage error) reported 'started' each time, so it restarted every second for good:
// the backoff never grew (found in review, 2026-12-07). Only an outside kill or a long run resets it.
test('a replica that crashes by itself right after it listens, again and again, waits longer each time', () => {
  const run: Run = { startedAt: 0, started: false, failures: 0 };
  let now = 0;
  const delays: number[] = [];
  for (let i = 0; i < 7; i++) {
    run.startedAt = now;
    run.started = false;
    now += 300;
    run.started = true; // it reported that it listens
    now += 100; // then exits with code 1, by itself
    delays.push(restartDelayMs(run, now, null));
    now += delays.at(-1)!;
  }
  assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
});
