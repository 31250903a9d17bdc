// The state-machine side: apply, reads, sessions, limits.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import fs from 'node:fs';
import {
  checkKeyValue,
  DEFAULT_LIMITS,
  InvalidKeyError,
  MAX_STORABLE_KEY_BYTES,
  openReplicaStore,
  TooLargeError,
  type Command,
  type ReplicaStore,
} from '../../src/storage/index.ts';
import { b, entries, hs, openFresh, ready, tempDir } from './helpers.ts';

const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** A store whose log holds `n` entries, so that apply may go up to n. */
async function storeWithLog(label: string, n = 1000): Promise<{ s: ReplicaStore; dir: string }> {
  const dir = tempDir(label);
  dirs.push(dir);
  const s = openFresh(dir);
  await s.persist(ready({ entries: entries(1, n, 1), hardState: hs(1, n) }));
  return { s, dir };
}

const put = (k: string, v: string): Command => ({ type: 'ops', ops: [{ type: 'put', key: b(k), value: b(v) }] });
const str = (v: Uint8Array | null | undefined): string | null | undefined => (v ? Buffer.from(v).toString() : v);

describe('apply', () => {
  it('put, get, delete, and the applied index', async () => {
    const { s } = await storeWithLog('ops');
    const r = await s.apply(1, [put('a', '1'), put('b', '2'), { type: 'ops', ops: [{ type: 'delete', key: b('a') }] }]);
    assert.deepEqual(r, [
      { outcome: 'applied', results: [{ status: 'ok' }] },
      { outcome: 'applied', results: [{ status: 'ok' }] },
      { outcome: 'applied', results: [{ status: 'ok' }] },
    ]);
    assert.equal(s.applied, 1);
    assert.equal(s.get(b('a')), null);
    assert.equal(str(s.get(b('b'))), '2');
    assert.equal(s.count(), 1);
    await s.close();
  });

  it('compare-and-set against a value, against absence, and to delete', async () => {
    const { s } = await storeWithLog('cas');
    const cas = (expected: string | null, value: string | null): Command => ({
      type: 'ops',
      ops: [{ type: 'cas', key: b('k'), expected: expected === null ? null : b(expected), value: value === null ? null : b(value) }],
    });
    const results = await s.apply(1, [
      cas(null, 'v1'), // absent → v1
      cas(null, 'v2'), // fails: present
      cas('v0', 'v2'), // fails: wrong value
      cas('v1', 'v2'), // v1 → v2, seeing the earlier write of this batch
      cas('v2', null), // delete
      cas('v2', 'v3'), // fails: absent
    ]);
    const view = results.map((r) => (r.outcome === 'stale' ? 'stale' : r.results.map((x) => (x.status === 'cas-failed' ? `failed:${str(x.current)}` : x.status))));
    assert.deepEqual(view, [['ok'], ['failed:v1'], ['failed:v1'], ['ok'], ['ok'], ['failed:null']]);
    assert.equal(s.get(b('k')), null);
    await s.close();
  });

  it('several ops of one command apply in order, and meta is kept by name', async () => {
    const { s } = await storeWithLog('multi');
    await s.apply(1, [
      {
        type: 'ops',
        ops: [
          { type: 'put', key: b('x'), value: b('1') },
          { type: 'cas', key: b('x'), expected: b('1'), value: b('2') },
          { type: 'set-meta', name: 'owner/7', value: b('group-2@epoch-3') },
        ],
      },
    ]);
    assert.equal(str(s.get(b('x'))), '2');
    assert.equal(str(s.getMeta('owner/7')), 'group-2@epoch-3');
    await s.apply(2, [{ type: 'ops', ops: [{ type: 'set-meta', name: 'owner/7', value: null }] }]);
    assert.equal(s.getMeta('owner/7'), undefined);
    await s.close();
  });

  it('rejects, the same way everywhere, keys LMDB cannot hold', async () => {
    const { s } = await storeWithLog('reject');
    const [r] = await s.apply(1, [
      {
        type: 'ops',
        ops: [
          { type: 'put', key: new Uint8Array(0), value: b('v') },
          { type: 'put', key: Buffer.alloc(MAX_STORABLE_KEY_BYTES + 1, 1), value: b('v') },
          { type: 'put', key: Buffer.alloc(MAX_STORABLE_KEY_BYTES, 1), value: b('v') },
        ],
      },
    ]);
    assert.ok(r && r.outcome === 'applied');
    assert.deepEqual(r.results.map((x) => x.status), ['rejected', 'rejected', 'ok']);
    assert.equal(s.count(), 1);
    await s.close();
  });

  it('the applied index and the writes it covers survive a reopen together', async () => {
    const { s, dir } = await storeWithLog('resume');
    await s.apply(5, [put('p', '5')]);
    await s.apply(9, [put('q', '9')]);
    await s.close();
    const again = openReplicaStore({ path: dir });
    assert.equal(again.load().applied, 9);
    assert.equal(again.applied, 9);
    assert.equal(str(again.get(b('p'))), '5');
    assert.equal(str(again.get(b('q'))), '9');
    await again.close();
  });

  it('persist and apply issued in one turn share one commit', async () => {
    const { s, dir } = await storeWithLog('same-turn', 3);
    const p = s.persist(ready({ entries: entries(4, 6, 1), hardState: hs(1, 6) }));
    const a = s.apply(6, [put('t', '6')]);
    await Promise.all([p, a]);
    await s.close();
    const again = openReplicaStore({ path: dir });
    const st = again.load();
    assert.equal(st.applied, 6);
    assert.equal(st.entries.length, 6);
    await again.close();
  });
});

describe('sessions', () => {
  it('a retried seq gets the cached results without re-applying; an older seq is stale', async () => {
    const { s } = await storeWithLog('sessions');
    const client = b('client-1');
    const cmd = (seq: number, time: number, expected: string | null, value: string): Command => ({
      type: 'ops',
      ops: [{ type: 'cas', key: b('c'), expected: expected === null ? null : b(expected), value: b(value) }],
      session: { clientId: client, seq, time },
    });
    const first = await s.apply(1, [cmd(1, 1000, null, 'a')]);
    assert.deepEqual(first, [{ outcome: 'applied', results: [{ status: 'ok' }] }]);
    // The retry would fail if re-applied (the key is no longer absent); the cache answers instead.
    assert.deepEqual(await s.apply(2, [cmd(1, 1001, null, 'a')]), [{ outcome: 'duplicate', results: [{ status: 'ok' }] }]);
    await s.apply(3, [cmd(2, 1002, 'a', 'b')]);
    assert.deepEqual(await s.apply(4, [cmd(1, 1003, null, 'zzz')]), [{ outcome: 'stale' }]);
    assert.equal(str(s.get(b('c'))), 'b');
    assert.deepEqual(s.getSession(client), { seq: 2, time: 1002 });
    await s.close();
  });

  it('expire by a log timestamp, not by the clock', async () => {
    const { s } = await storeWithLog('expiry');
    const stamp = (id: string, time: number): Command => ({ type: 'ops', ops: [], session: { clientId: b(id), seq: 1, time } });
    await s.apply(1, [stamp('old', 100), stamp('new', 5000)]);
    await s.apply(2, [{ type: 'expire-sessions', before: 1000 }]);
    assert.equal(s.getSession(b('old')), undefined);
    assert.deepEqual(s.getSession(b('new')), { seq: 1, time: 5000 });
    await s.close();
  });
});

describe('one batch', () => {
  it('sees its own writes: sessions, deletes and expiry of sessions written earlier in the batch', async () => {
    const { s } = await storeWithLog('own-writes');
    const stamp = (id: string, seq: number, time: number): Command => ({ type: 'ops', ops: [{ type: 'put', key: b(`k-${id}`), value: b(String(seq)) }], session: { clientId: b(id), seq, time } });
    await s.apply(1, [stamp('committed-old', 1, 100), stamp('committed-new', 1, 5000)]);
    const results = await s.apply(2, [
      stamp('batch-old', 1, 200),
      stamp('batch-old', 1, 201), // a retry within the batch: the cached result, not applied again
      stamp('batch-new', 1, 6000),
      { type: 'ops', ops: [{ type: 'delete', key: b('k-committed-new') }, { type: 'cas', key: b('k-batch-new'), expected: b('1'), value: b('2') }] },
      { type: 'expire-sessions', before: 1000 },
      stamp('batch-old', 1, 7000), // expired above, so applied as new
    ]);
    assert.deepEqual(
      results.map((r) => r.outcome),
      ['applied', 'duplicate', 'applied', 'applied', 'applied', 'applied'],
    );
    assert.deepEqual(results[3], { outcome: 'applied', results: [{ status: 'ok' }, { status: 'ok' }] });
    assert.equal(s.getSession(b('committed-old')), undefined);
    assert.deepEqual(s.getSession(b('committed-new')), { seq: 1, time: 5000 });
    assert.deepEqual(s.getSession(b('batch-old')), { seq: 1, time: 7000 });
    assert.deepEqual(s.getSession(b('batch-new')), { seq: 1, time: 6000 });
    assert.equal(s.get(b('k-committed-new')), null);
    assert.equal(str(s.get(b('k-batch-new'))), '2');
    await s.close();
  });
});

describe('partition hand-off', () => {
  it('sessionImages feed an import: pairs land, sessions merge keeping the higher seq', async () => {
    const { s: from } = await storeWithLog('handoff-from');
    await from.apply(1, [
      { type: 'ops', ops: [{ type: 'put', key: b('p1'), value: b('one') }], session: { clientId: b('c1'), seq: 5, time: 50 } },
      { type: 'ops', ops: [{ type: 'put', key: b('p2'), value: b('two') }], session: { clientId: b('c2'), seq: 3, time: 30 } },
    ]);
    const sessions = from.sessionImages();
    assert.deepEqual(sessions.map((x) => Buffer.from(x.clientId).toString()).sort(), ['c1', 'c2']);

    const { s: to } = await storeWithLog('handoff-to');
    await to.apply(1, [{ type: 'ops', ops: [], session: { clientId: b('c2'), seq: 9, time: 90 } }]);
    const [r] = await to.apply(2, [{ type: 'import', items: from.scan(Buffer.of(0), null, 100).items, sessions }]);
    assert.deepEqual(r, { outcome: 'applied', results: [] });
    assert.equal(str(to.get(b('p1'))), 'one');
    assert.equal(str(to.get(b('p2'))), 'two');
    assert.deepEqual(to.getSession(b('c1')), { seq: 5, time: 50 }); // new here: taken
    assert.deepEqual(to.getSession(b('c2')), { seq: 9, time: 90 }); // newer here: kept
    // The imported session still answers a retry of its last write from the cache.
    const [retry] = await to.apply(3, [{ type: 'ops', ops: [{ type: 'put', key: b('p1'), value: b('again') }], session: { clientId: b('c1'), seq: 5, time: 51 } }]);
    assert.deepEqual(retry, { outcome: 'duplicate', results: [{ status: 'ok' }] });
    assert.equal(str(to.get(b('p1'))), 'one');
    await from.close();
    await to.close();
  });
});

describe('reads', () => {
  it('scan orders keys bytewise, honours [start, end) and limit, and says where to continue', async () => {
    const { s } = await storeWithLog('scan');
    const keys = [Buffer.of(0), Buffer.of(0, 0), Buffer.of(1), Buffer.of(0x7f), Buffer.of(0x80), Buffer.of(0xff), Buffer.of(0xff, 0), b('a'), b('ab'), b('b')];
    await s.apply(1, keys.map((k, i): Command => ({ type: 'ops', ops: [{ type: 'put', key: k, value: Buffer.of(i) }] })));
    const sorted = [...keys].sort(Buffer.compare);
    const all = s.scan(Buffer.of(0), null, 100);
    assert.deepEqual(all.items.map((kv) => Buffer.from(kv.key)), sorted);
    assert.equal(all.more, null);
    const page = s.scan(b('a'), Buffer.of(0xff), 2);
    assert.deepEqual(page.items.map((kv) => Buffer.from(kv.key).toString('hex')), ['61', '6162']);
    assert.deepEqual(Buffer.from(page.more!), b('b'));
    const rest = s.scan(page.more!, Buffer.of(0xff), 10);
    assert.deepEqual(rest.items.map((kv) => Buffer.from(kv.key).toString('hex')), ['62', '7f', '80']);
    assert.equal(rest.more, null);
    // values come back with their keys
    for (const kv of all.items) assert.equal(kv.value[0], keys.findIndex((k) => k.equals(kv.key)));
    await s.close();
  });
});

describe('limits', () => {
  it('checkKeyValue throws typed errors with clear messages', () => {
    checkKeyValue(b('k'), b('v'));
    checkKeyValue(Buffer.alloc(DEFAULT_LIMITS.maxKeyBytes), Buffer.alloc(DEFAULT_LIMITS.maxValueBytes));
    assert.equal(DEFAULT_LIMITS.maxValueBytes, 1024 * 1024);
    assert.throws(() => checkKeyValue(Buffer.alloc(DEFAULT_LIMITS.maxKeyBytes + 1), b('v')), (e: unknown) => {
      assert.ok(e instanceof TooLargeError);
      assert.equal(e.what, 'key');
      assert.match(e.message, /key of 4027 bytes exceeds the limit of 4026 bytes/);
      return true;
    });
    assert.throws(() => checkKeyValue(b('k'), Buffer.alloc(1024 * 1024 + 1)), /value of 1048577 bytes exceeds the limit of 1048576 bytes/);
    assert.throws(() => checkKeyValue(b('k'), b('123456'), { maxKeyBytes: 10, maxValueBytes: 5 }), TooLargeError);
    checkKeyValue(b('k'), null);
    assert.throws(() => checkKeyValue(new Uint8Array(0), b('v')), InvalidKeyError);
  });

  it('the store takes configured limits and refuses ones LMDB cannot honour', async () => {
    const dir = tempDir('limits');
    dirs.push(dir);
    const s = openReplicaStore({ path: dir, limits: { maxValueBytes: 10 } });
    assert.deepEqual(s.limits, { maxKeyBytes: DEFAULT_LIMITS.maxKeyBytes, maxValueBytes: 10 });
    await s.close();
    assert.throws(() => openReplicaStore({ path: dir, limits: { maxKeyBytes: 4096 } }), /exceeds what LMDB can store/);
  });
});
