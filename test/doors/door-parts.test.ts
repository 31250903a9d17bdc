// The small parts behind the doors: glob matching, SCAN cursors, the read-modify-write updater,
// readiness, and the metrics registry (rendered text checked by the Prometheus reader).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { globMatch, globPrefix, prefixEnd } from '../../src/doors/glob.ts';
import { KeyUpdater } from '../../src/doors/key-updater.ts';
import { KvOps } from '../../src/doors/kv-ops.ts';
import { Readiness } from '../../src/doors/readiness.ts';
import { ScanCursors } from '../../src/doors/scan-cursors.ts';
import { Counter, Histogram, Registry, ServerMetrics } from '../../src/server/metrics.ts';
import { MemoryExecutor } from './memory-executor.ts';
import { parsePrometheus, sampleValue } from './prom-parse.ts';
import { Prng } from './prng.ts';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

describe('glob', () => {
  it('matches like Redis', () => {
    const yes: [string, string][] = [
      ['*', ''],
      ['user:*', 'user:1'],
      ['h?llo', 'hello'],
      ['h[ae]llo', 'hallo'],
      ['h[^e]llo', 'hallo'],
      ['h[a-b]llo', 'hbllo'],
      ['a\\*b', 'a*b'],
      ['*x*y*', 'axbyc'],
      ['[z-a]', 'm'],
    ];
    const no: [string, string][] = [
      ['user:*', 'use'],
      ['h[^e]llo', 'hello'],
      ['a\\*b', 'axb'],
      ['?', ''],
      ['*x*y', 'axbyc'],
    ];
    for (const [p, s] of yes) assert.equal(globMatch(b(p), b(s)), true, `${p} ~ ${s}`);
    for (const [p, s] of no) assert.equal(globMatch(b(p), b(s)), false, `${p} !~ ${s}`);
    assert.equal(globMatch(b('SAVE'), b('save'), true), true);
  });

  it('costs at most pattern × subject on hostile patterns', () => {
    const pattern = b(`${'*a'.repeat(200)}b`);
    assert.equal(globMatch(pattern, b('a'.repeat(5000))), false); // would be exponential with naive backtracking
  });

  it('finds literal prefixes and their range ends', () => {
    assert.deepEqual(Buffer.from(globPrefix(b('user:\\*x*'))), b('user:*x'));
    assert.deepEqual(Buffer.from(prefixEnd(b('ab'))!), b('ac'));
    assert.deepEqual(Buffer.from(prefixEnd(Buffer.from([0x61, 0xff]))!), b('b'));
    assert.equal(prefixEnd(Buffer.from([0xff, 0xff])), null);
  });

  it('never throws on random patterns', () => {
    const rng = new Prng(3);
    for (let i = 0; i < 20_000; i++) globMatch(rng.bytes(rng.int(12)).map((x) => (x % 4 === 0 ? 0x5b : x % 5 === 0 ? 0x2a : x)), rng.bytes(rng.int(20)));
  });
});

describe('ScanCursors', () => {
  it('hands out decimal cursors that resolve to their key, and forgets the oldest', () => {
    const c = new ScanCursors(2);
    const a = c.issue(b('a'));
    const bb = c.issue(b('b'));
    assert.match(a, /^[1-9]\d*$/);
    assert.ok(BigInt(a) < 2n ** 64n);
    assert.deepEqual(Buffer.from(c.resolve(bb)!), b('b'));
    c.issue(b('c'));
    assert.equal(c.resolve(a), undefined);
    assert.deepEqual(c.resolve('0'), new Uint8Array(0));
  });
});

describe('KeyUpdater', () => {
  it('never decides not to write on a guess alone', async () => {
    const exec = new MemoryExecutor();
    const kv = new KvOps(exec, { maxKeyBytes: 100, maxValueBytes: 100 });
    const u = new KeyUpdater(kv);
    exec.data.set('k', b('1'));
    // The stale read says "exists"; an authoritative read must confirm before SET NX gives up.
    const r = await u.update(b('k'), (cur) => (cur !== null ? { write: false, result: 'exists' } : { write: true, value: b('v'), result: 'set' }));
    assert.equal(r, 'exists');
    assert.deepEqual(
      exec.seen.map((q) => (q.op === 'get' ? `get:${q.consistency}` : q.op)),
      ['get:stale', 'get:linearizable'],
    );
  });

  it('folds queued updates into one CAS and retries on a conflicting writer', async () => {
    const exec = new MemoryExecutor();
    exec.delayMs = 2;
    const kv = new KvOps(exec, { maxKeyBytes: 100, maxValueBytes: 100 });
    const u = new KeyUpdater(kv);
    const incr = (): Promise<number> =>
      u.update(b('n'), (cur) => {
        const n = Number(cur?.toString() ?? '0') + 1;
        return { write: true, value: b(String(n)), result: n };
      });
    const first = incr();
    exec.data.set('n', b('100')); // another writer sneaks in before the first CAS
    const rest = Array.from({ length: 50 }, () => incr());
    const results = await Promise.all([first, ...rest]);
    assert.deepEqual([...results].sort((x, y) => x - y), Array.from({ length: 51 }, (_, i) => 101 + i));
    assert.equal(exec.data.get('n')?.toString(), '151');
    assert.ok(exec.seen.filter((q) => q.op === 'cas').length <= 4);
  });

  it('fails one update that throws, without failing the others in its batch', async () => {
    const exec = new MemoryExecutor();
    const kv = new KvOps(exec, { maxKeyBytes: 100, maxValueBytes: 100 });
    const u = new KeyUpdater(kv);
    const ok = u.update(b('x'), () => ({ write: true, value: b('1'), result: 'ok' }));
    const bad = u.update(b('x'), () => {
      throw new Error('not a number');
    });
    assert.equal(await ok, 'ok');
    await assert.rejects(bad, /not a number/);
  });
});

describe('Readiness', () => {
  it('is not ready without a leader, ready after a barrier, and shares one barrier', async () => {
    let barriers = 0;
    let leader = 0;
    let release!: () => void;
    const src = {
      get leader() {
        return leader;
      },
      readBarrier: () => {
        barriers++;
        return new Promise<void>((r) => (release = r));
      },
    };
    const r = new Readiness(src, 60_000);
    assert.deepEqual(await r.check(), { ready: false, reason: 'no leader known to this replica' });
    leader = 2;
    const a = r.check();
    const bb = r.check();
    release();
    assert.equal((await a).ready, true);
    assert.equal((await bb).ready, true);
    assert.equal(barriers, 1);
  });

  it('reports a replica that cannot confirm in time as catching up', async () => {
    const r = new Readiness({ leader: 1, readBarrier: () => new Promise<void>(() => {}) }, 1);
    const res = await r.check();
    assert.equal(res.ready, false);
    assert.match(res.reason, /catching up/);
  });

  it('is not ready while user keys cannot be served yet (configuration not applied, routes not ready), whatever Raft says', async () => {
    let why: string | undefined = 'the cluster configuration is not applied by this replica yet';
    const r = new Readiness({ leader: 1, readBarrier: () => Promise.resolve() }, 1000, () => why);
    assert.deepEqual(await r.check(), { ready: false, reason: 'the cluster configuration is not applied by this replica yet' });
    why = undefined;
    assert.equal((await r.check()).ready, true);
  });

  it('is not ready while the replica is blank (its data directory replaced, not caught up)', async () => {
    let blank = true;
    const r = new Readiness({ leader: 1, get blank() { return blank; }, readBarrier: () => Promise.resolve() }, 1000);
    const res = await r.check();
    assert.equal(res.ready, false);
    assert.match(res.reason, /^blank: /);
    blank = false;
    assert.equal((await r.check()).ready, true);
  });
});

describe('metrics', () => {
  it('renders counters, histograms and label escapes that the Prometheus reader accepts', () => {
    const reg = new Registry();
    const c = reg.add(new Counter('t_total', 'A "counter".\nTwo lines.', ['door', 'op']));
    const h = reg.add(new Histogram('t_seconds', 'A histogram.', [0.1, 1], ['op']));
    c.inc(['r"e\\s\np', 'get']);
    c.inc(['resp', 'get'], 2);
    h.observe(0.05, ['get']);
    h.observe(0.5, ['get']);
    h.observe(5, ['get']);
    const e = parsePrometheus(reg.render());
    assert.equal(sampleValue(e, 't_total', { door: 'r"e\\s\np' }), 1);
    assert.equal(sampleValue(e, 't_seconds_bucket', { op: 'get', le: '0.1' }), 1);
    assert.equal(sampleValue(e, 't_seconds_bucket', { op: 'get', le: '1' }), 2);
    assert.equal(sampleValue(e, 't_seconds_bucket', { op: 'get', le: '+Inf' }), 3);
    assert.equal(sampleValue(e, 't_seconds_sum', { op: 'get' }), 5.55);
  });

  it('exports the replica metrics from their sources', () => {
    const m = new ServerMetrics({
      raft: () => ({ role: 'follower', term: 7, leader: 2, quiet: true, blank: true, commit: 40, applied: 39, firstIndex: 10, lastIndex: 41, progress: [] }),
      replicaStats: () => ({ leaderChanges: 3, readies: 100, applied: 39, persisted: 41, readsJoined: 2 }),
      routerStats: () => ({ forwarded: 5, proposed: 0, reads: 8, staleReads: 1 }),
      peers: () => [{ id: 2, connected: true, framesSent: 9, dropped: 0 }],
      keys: () => 12,
      storageBytes: () => 4096,
    });
    m.observeRequest('resp', 'get', 0.002, 'ok');
    m.observeFsync(0.004, 16);
    m.connectionOpened('resp');
    const e = parsePrometheus(m.render());
    assert.equal(sampleValue(e, 'kvs_raft_term'), 7);
    assert.equal(sampleValue(e, 'kvs_raft_role', { role: 'follower' }), 1);
    assert.equal(sampleValue(e, 'kvs_raft_quiet'), 1);
    assert.equal(sampleValue(e, 'kvs_raft_blank'), 1);
    assert.equal(sampleValue(e, 'kvs_raft_log_entries'), 32);
    assert.equal(sampleValue(e, 'kvs_raft_leader_changes_total'), 3);
    assert.equal(sampleValue(e, 'kvs_router_forwarded_total'), 5);
    assert.equal(sampleValue(e, 'kvs_fsync_batch_entries_bucket', { le: '16' }), 1);
    assert.equal(sampleValue(e, 'kvs_requests_total', { door: 'resp', op: 'get', outcome: 'ok' }), 1);
    assert.equal(sampleValue(e, 'kvs_door_connections', { door: 'resp' }), 1);
    assert.equal(sampleValue(e, 'kvs_peer_connected', { peer: '2' }), 1);
  });
});
