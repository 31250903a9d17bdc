// The admin commands' bounded wait (src/resharding/patience.ts), on a fake clock: "not now" errors
// (no leader, connection refused, NOT_LEADER, a timed-out attempt) are repeated until answered or
// the deadline, with progress lines; anything else fails at once. `kvs reshard` used to fail after
// one 5 s read while the placement group elected.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KvsError } from '../../src/client/client.ts';
import { isTransient, patiently, type Clock } from '../../src/resharding/patience.ts';

function fakeClock(): Clock & { slept: number[] } {
  let t = 1_000_000;
  const slept: number[] = [];
  return {
    slept,
    now: () => t,
    sleep: async (ms) => {
      slept.push(ms);
      t += ms;
    },
  };
}

function refused(): Error {
  return Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:7001'), { code: 'ECONNREFUSED' });
}

test('transient errors are repeated until the group answers; progress says what it waits for', async () => {
  const clock = fakeClock();
  const lines: string[] = [];
  const failures = [refused(), new KvsError('NOT_LEADER', 'no leader to confirm the read'), new KvsError('TIMEOUT', 'no answer'), new KvsError('UNREACHABLE', 'every replica refused'), new KvsError('UNAVAILABLE', 'no slot')];
  const lefts: number[] = [];
  const got = await patiently(
    'the placement group to answer',
    async (left) => {
      lefts.push(left);
      const e = failures.shift();
      if (e) throw e;
      return 'config';
    },
    { timeoutMs: 60_000, say: (l) => lines.push(l), clock, pauseMs: 250 },
  );
  assert.equal(got, 'config');
  assert.equal(lefts.length, 6);
  assert.deepEqual(lefts, [60_000, 59_750, 59_500, 59_250, 59_000, 58_750], 'each attempt is told the time left');
  assert.match(lines[0]!, /^waiting for the placement group to answer \(connect ECONNREFUSED 127\.0\.0\.1:7001\); giving up in 60 s$/);
  assert.match(lines[1]!, /no leader to confirm the read/);
  assert.equal(lines.at(-1), 'waited 1.3 s for the placement group to answer');
});

test('the same error repeated is said again only every 5 s', async () => {
  const clock = fakeClock();
  const lines: string[] = [];
  let n = 0;
  await patiently(
    'shard group 1 to elect a leader',
    async () => {
      if (++n <= 41) throw new KvsError('NOT_LEADER', 'no leader');
      return undefined;
    },
    { timeoutMs: 60_000, say: (l) => lines.push(l), clock },
  );
  // 41 failures 250 ms apart (0 to 10 s): said at 0, 5 and 10 s, then the answer.
  assert.equal(lines.length, 4, lines.join('\n'));
});

test('when the time is up: an error naming what it waited for, how long, the flag and the last error', async () => {
  const clock = fakeClock();
  let tries = 0;
  await assert.rejects(
    patiently(
      'the placement group to answer with the cluster configuration',
      async (left) => {
        tries++;
        await clock.sleep(Math.min(5000, left)); // each attempt runs into its own timeout, bounded by the time left
        throw new KvsError('NOT_LEADER', 'no leader to confirm the read');
      },
      { timeoutMs: 60_000, flag: '--timeout-ms', clock },
    ),
    (e: Error) => {
      assert.equal(e.message, `gave up after 60 s waiting for the placement group to answer with the cluster configuration (--timeout-ms sets how long): ${tries} attempts, the last failed with: no leader to confirm the read`);
      return true;
    },
  );
  assert.ok(tries >= 11 && tries <= 12, `${tries} attempts`);
  assert.ok(clock.slept.every((ms) => ms >= 0));
});

test('an error that is an answer fails at once', async () => {
  const clock = fakeClock();
  let tries = 0;
  await assert.rejects(
    patiently('x', async () => {
      tries++;
      throw new Error('add replica 104 refused: not a member');
    }, { timeoutMs: 60_000, clock }),
    /refused: not a member/,
  );
  assert.equal(tries, 1);
  await assert.rejects(patiently('x', async () => Promise.reject(new KvsError('BAD_REQUEST', 'bad key')), { timeoutMs: 60_000, clock }), /bad key/);
});

test('which errors mean "not now"', () => {
  for (const code of ['NOT_LEADER', 'UNREACHABLE', 'UNAVAILABLE', 'TIMEOUT'] as const) assert.ok(isTransient(new KvsError(code, '')), code);
  for (const code of ['BAD_REQUEST', 'TOO_LARGE', 'WRONG_GROUP', 'CLOSED'] as const) assert.ok(!isTransient(new KvsError(code, '')), code);
  assert.ok(isTransient(refused()));
  assert.ok(!isTransient(new Error('the placement group has no configuration yet')));
  assert.ok(!isTransient('a string'));
});
