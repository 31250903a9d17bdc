// The admin commands' bounded wait (src/resharding/patience.ts), on a fake clock: "not now" errors
// (no leader, connection refused, NOT_LEADER, a timed-out attempt) are repeated until answered or
// the deadline, with progress lines; anything else fails at once. `kvs reshard` used to fail after
// one 5 s read while the placement group elected.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, test } from 'node:test';
import { writeCluster, type ClusterReplica } from '../../src/cli/cluster-file.ts';
import { runReshard, storeReshard } from '../../src/cli/reshard-command.ts';
import { KvsError } from '../../src/client/client.ts';
import { serveNativeClient } from '../../src/doors/native-door.ts';
import { loadXxh64 } from '../../src/partition/index.ts';
import { CONFIG_KEY, completeMoves, decodeConfig, encodeConfig, initialConfig, type ClusterConfig } from '../../src/placement/config.ts';
import { isTransient, patiently, type Clock } from '../../src/resharding/patience.ts';
import type { RawRequest } from '../../src/router/router.ts';
import { FrameSocket } from '../../src/transport/frame-socket.ts';
import type { Request, Response } from '../../src/wire/index.ts';
import { MemoryExecutor } from '../doors/memory-executor.ts';

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

/** Serves `exec` on an in-process native door at 127.0.0.1 (a free port); the test closes the server. */
async function serveFake(exec: MemoryExecutor): Promise<{ server: net.Server; address: string }> {
  const server = net.createServer((s) => {
    s.on('error', () => {});
    const conn = new FrameSocket(s);
    serveNativeClient(conn, exec);
    conn.listen();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, address: `127.0.0.1:${(server.address() as net.AddressInfo).port}` };
}

/** The configuration of shard groups 1 and 2 (16 partitions), one replica each, both at `address`. */
async function twoGroups(address: string): Promise<ClusterConfig> {
  return initialConfig(await loadXxh64(), [1, 2].map((id) => ({ id, replicas: [{ id: 100 + id, address }] })), 16);
}

/**
 * One in-process native door standing in for the placement group and shard group 1's replica: it
 * holds the configuration, finishes the moves of a reshard once read at `completeAt` or later, and
 * says it leads only from `leadsFrom` on.
 */
class FakeCluster extends MemoryExecutor {
  completeAt = Infinity;
  leadsFrom = Infinity;
  /** Called when moves complete (the test then schedules the next step). */
  onComplete: () => void = () => {};

  override async execute(req: Request, raw: RawRequest): Promise<Response> {
    if (req.op === 'status') {
      const r = await super.execute(req, raw);
      if (r.kind !== 'status' || Date.now() >= this.leadsFrom) return r;
      return { kind: 'status', info: { ...r.info, role: 'follower', leaderId: 0, leaderAddr: '' } };
    }
    const raw0 = this.data.get(CONFIG_KEY);
    if (req.op === 'get' && Buffer.from(req.key).toString() === CONFIG_KEY && raw0 && Date.now() >= this.completeAt) {
      const c = decodeConfig(raw0);
      if (c.moves.length > 0) {
        this.data.set(CONFIG_KEY, Buffer.from(encodeConfig({ ...c, epoch: c.epoch + 1, moves: [] })));
        this.onComplete();
      }
    }
    return super.execute(req, raw);
  }
}

// `kvs reshard` following a reshard already in progress spent its --timeout-ms on that, then found
// its wait for each group's leader (and the store of its own configuration) already past the
// deadline: one failed attempt and "gave up after 0.0 s", where before it waited up to 30 s for a
// leader (found in review, 2026-12-07). The wait for leaders starts once the earlier reshard is done.
describe('kvs reshard after following a reshard in progress (in-process)', () => {
  it('still waits for a shard group without a leader, within --timeout-ms', async () => {
    const exec = new FakeCluster();
    const { server, address } = await serveFake(exec);
    const dir = mkdtempSync(join(tmpdir(), 'kvs-reshard-follow-'));
    const log = console.log;
    const err = console.error;
    try {
      const c = await twoGroups(address);
      // A reshard in progress: partition 0 moves from its owner to the other group.
      const from = c.owner[0]!;
      exec.data.set(CONFIG_KEY, Buffer.from(encodeConfig({ ...c, moves: [{ partition: 0, from, to: from === 1 ? 2 : 1 }] })));
      const replica = (id: number, group: number, role: 'placement' | 'shard'): ClusterReplica => ({ id, group, role, pid: 0, dataDir: dir, endpoints: { native: address } });
      writeCluster(dir, [replica(1, 0, 'placement'), replica(101, 1, 'shard')]);
      // The reshard in progress ends after 1.5 s, past the 1 s of --timeout-ms; group 1 then has no
      // leader for 300 ms more. The moves of ours complete at once.
      const began = Date.now();
      exec.completeAt = began + 1500;
      exec.onComplete = () => {
        if (exec.leadsFrom === Infinity) exec.leadsFrom = Date.now() + 300;
        exec.completeAt = 0;
      };
      const said: string[] = [];
      console.log = (...a: unknown[]) => void said.push(a.join(' '));
      console.error = (...a: unknown[]) => void said.push(a.join(' '));
      const code = await runReshard(['--shards', '1', '--data', dir, '--timeout-ms', '1000']);
      console.log = log;
      console.error = err;
      assert.equal(code, 0, said.join('\n'));
      assert.ok(said.some((l) => /waiting for shard group 1 to elect a leader/.test(l)), said.join('\n'));
      assert.deepEqual(decodeConfig(exec.data.get(CONFIG_KEY)!).groups.map((g) => g.id), [1, 2]);
      assert.ok(Date.now() - began >= 1800);
    } finally {
      console.log = log;
      console.error = err;
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * A placement group whose configuration CAS applies but is never answered while `hangCas` is set
 * (its leader lost its term before replying, say); the reshard it stored then completes at once.
 */
class UnansweredCas extends MemoryExecutor {
  hangCas = true;
  /** Epochs of the configurations written. */
  stored: number[] = [];

  override async execute(req: Request, raw: RawRequest): Promise<Response> {
    if (req.op !== 'cas' || Buffer.from(req.key).toString() !== CONFIG_KEY) return super.execute(req, raw);
    if (this.hangCas && this.stored.length > 0) return new Promise(() => {}); // the client's resends
    const r = await super.execute(req, raw);
    if (r.kind === 'cas' && r.ok) {
      const c = decodeConfig(this.data.get(CONFIG_KEY)!);
      this.stored.push(c.epoch);
      if (this.hangCas) {
        // Our moves finish before the retry comes.
        this.data.set(CONFIG_KEY, Buffer.from(encodeConfig(completeMoves(c, c.moves.map((m) => m.partition)))));
        return new Promise(() => {});
      }
    }
    return r;
  }
}

// storeReshard's CAS timed out but had applied, and the moves finished before the retry: the retry
// found no reshard in progress, stored another (epoch + 1, no moves) and kvs reshard printed
// "0 of N partitions move" (found in review, 2026-12-07). The retry now sees its configuration in force.
describe('kvs reshard whose configuration write timed out but applied (in-process)', () => {
  it('recognises the configuration in force on the retry and stores nothing more', async () => {
    const exec = new UnansweredCas();
    const { server, address } = await serveFake(exec);
    try {
      const c = await twoGroups(address);
      exec.data.set(CONFIG_KEY, Buffer.from(encodeConfig(c)));
      // A fake clock: each attempt's own timeout is real (800 ms); the retry's pause ends the hang.
      const clock = fakeClock();
      const sleep = clock.sleep;
      clock.sleep = async (ms) => {
        exec.hangCas = false;
        await sleep(ms);
      };
      const said: string[] = [];
      const r = await storeReshard([address], [c.groups[0]!], c.epoch, { timeoutMs: 800, clock, say: (l) => said.push(l) });
      assert.ok(said.some((l) => /TIMEOUT|no answer|may or may not/i.test(l)), `the first attempt timed out: ${said.join('\n')}`);
      assert.deepEqual(exec.stored, [c.epoch + 1], 'one configuration written: ours');
      const now = decodeConfig(exec.data.get(CONFIG_KEY)!);
      assert.equal(now.epoch, c.epoch + 2, 'the epoch its moves completed at, no empty reshard after it');
      assert.deepEqual(now.groups.map((g) => g.id), [1]);
      assert.equal(r.inForce, true);
      assert.equal(r.config.epoch, now.epoch);
      assert.equal(r.config.moves.length, 0);
    } finally {
      server.close();
    }
  });

  it('a reshard stored at the first attempt is not reported in force', async () => {
    const exec = new UnansweredCas();
    exec.hangCas = false;
    const { server, address } = await serveFake(exec);
    try {
      const c = await twoGroups(address);
      exec.data.set(CONFIG_KEY, Buffer.from(encodeConfig(c)));
      const r = await storeReshard([address], [c.groups[0]!], c.epoch, { timeoutMs: 800, clock: fakeClock() });
      assert.equal(r.inForce, false);
      assert.equal(r.config.epoch, c.epoch + 1);
      assert.ok(r.config.moves.length > 0);
      assert.deepEqual(exec.stored, [c.epoch + 1]);
    } finally {
      server.close();
    }
  });
});
