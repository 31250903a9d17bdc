// A scan bound longer than a key can be: a start over 4096 bytes failed inside LMDB ("offset is out
// of bounds"), an end over 4026 bytes too ("Key of size 4027 was too large"); the router turned
// those into UNAVAILABLE, which clients retry, so the caller waited out its whole deadline for a
// request that could never succeed. Now the router refuses such a bound with TOO_LARGE (not
// retried) before the read barrier and before a sharded scan fans out, and the store itself
// refuses it with TooLargeError instead of an internal LMDB error.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, describe, it } from 'node:test';
import type { ConfigWatcher } from '../../src/cluster/config-watcher.ts';
import { errorVerdict } from '../../src/cluster/group-call.ts';
import { createPartitioner, loadXxh64 } from '../../src/partition/index.ts';
import { initialConfig } from '../../src/placement/config.ts';
import type { GroupConnections } from '../../src/router/groups.ts';
import { ShardRoutes } from '../../src/router/sharded.ts';
import { TooLargeError } from '../../src/storage/errors.ts';
import { checkKeyValue } from '../../src/storage/limits.ts';
import { FrameType, type Request, type Response } from '../../src/wire/index.ts';
import { openFresh, tempDir } from '../storage/helpers.ts';
import { callLocal, stubRouter } from '../support/stub-router.ts';

const scan = (start: number, end: number | null, consistency: 'linearizable' | 'stale' = 'linearizable'): Request => ({ op: 'scan', start: Buffer.alloc(start, 'k'), end: end === null ? null : Buffer.alloc(end, 'l'), limit: 1, consistency });
const tooLong: [string, Request][] = [
  ['a 4027-byte start', scan(4027, null)],
  ['a 5000-byte start', scan(5000, null)],
  ['a 65,535-byte start', scan(65_535, 1)],
  ['a 4027-byte end', scan(1, 4027)],
  ['a 65,535-byte end (stale)', scan(0, 65_535, 'stale')],
];

describe('scan bounds longer than a key', () => {
  const dir = tempDir('scan-bounds');
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  for (const [what, req] of tooLong) {
    it(`${what}: TOO_LARGE at once from the router, never retried`, async () => {
      let barriers = 0;
      const router = stubRouter({
        checkSizes: (k, v) => checkKeyValue(k, v),
        replica: { readBarrier: () => (barriers++, Promise.resolve()), visibleBarrier: () => (barriers++, Promise.resolve()) },
        reader: { get: () => null, scan: () => assert.fail('the store is not asked'), count: () => 0 },
      });
      const res = await callLocal(router, req);
      assert.equal(res.kind === 'error' && res.error.code, 'TOO_LARGE', JSON.stringify(res).slice(0, 200));
      assert.match(res.kind === 'error' ? res.error.message : '', /^scan (start|end): key of \d+ bytes exceeds the limit of 4026 bytes$/);
      assert.equal(errorVerdict(res.kind === 'error' ? res.error : { code: 'UNAVAILABLE', message: '' }, true), 'done', 'clients do not retry it');
      assert.equal(barriers, 0, 'answered before any read barrier');
    });
  }

  it('a sharded scan with such a bound is refused before it fans out', async () => {
    const partitioner = await createPartitioner(64);
    const config = initialConfig(await loadXxh64(), [1, 2].map((id) => ({ id, replicas: [] })), 64);
    const watcher = { current: config, refresh: async () => config, waitFor: async () => config } as unknown as ConfigWatcher;
    const sent: number[] = [];
    const groups = { send: async (g: number): Promise<Response> => (sent.push(g), { kind: 'scan', items: [], more: null }) } as unknown as GroupConnections;
    const router = stubRouter({ checkSizes: (k, v) => checkKeyValue(k, v) });
    const routes = new ShardRoutes({ group: 1, watcher, partitioner, groups, local: async () => (sent.push(1), { kind: 'scan', items: [], more: null }), refusal: (r) => router.refusal(r) });
    for (const [, req] of tooLong) {
      const res = await routes.execute(req, { type: FrameType.Scan, body: new Uint8Array(0), hops: 0 }, Date.now() + 5000);
      assert.equal(res.kind === 'error' && res.error.code, 'TOO_LARGE');
    }
    assert.deepEqual(sent, []);
    assert.equal((await routes.execute(scan(4026, 4026), { type: FrameType.Scan, body: new Uint8Array(0), hops: 0 }, Date.now() + 5000)).kind, 'scan');
  });

  it('the store refuses such a bound with TooLargeError, not an LMDB error', () => {
    const s = openFresh(dir);
    for (const [, req] of tooLong) {
      if (req.op !== 'scan') continue;
      assert.throws(() => s.scan(req.start, req.end, 1), (e: unknown) => e instanceof TooLargeError && /^scan (start|end) of \d+ bytes/.test(e.message));
    }
    assert.deepEqual(s.scan(Buffer.alloc(4026, 'k'), Buffer.alloc(4026, 'l'), 1), { items: [], more: null });
  });
});
