// A batch with one op over the limits is refused whole. The shard router splits a batch per
// partition before the group that serves each part checks its keys and values, so a batch of 8
// valid puts and one 5000-byte key came back TOO_LARGE with the 8 puts applied. It now checks every
// op against the server's limits first (Router.refusal) and sends no part of a batch it refuses.
// The clients refuse keys no server can store (empty, over 4026 bytes) before sending anything; the
// smart client splits batches itself, so this is its only check before parts go out.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KvsClient, KvsError } from '../../src/client/index.ts';
import type { ConfigWatcher } from '../../src/cluster/config-watcher.ts';
import { createPartitioner, loadXxh64 } from '../../src/partition/index.ts';
import { initialConfig } from '../../src/placement/config.ts';
import type { GroupConnections } from '../../src/router/groups.ts';
import { ShardRoutes } from '../../src/router/sharded.ts';
import { MAX_STORABLE_KEY_BYTES, checkKeyValue } from '../../src/storage/limits.ts';
import { FrameType, MAX_KEY_BYTES, type Request, type Response } from '../../src/wire/index.ts';
import { stubRouter } from '../support/stub-router.ts';
import { clientsOnFakeReplica } from '../client/fake-replica.ts';

const limits = { maxKeyBytes: 100, maxValueBytes: 1000 };
const put = (key: string | Uint8Array, value: string | Uint8Array = 'v') => ({ op: 'put' as const, key: Buffer.from(key), value: Buffer.from(value) });
const batchOf = (...ops: Extract<Request, { op: 'batch' }>['ops']): Request => ({ op: 'batch', clientId: 7n, seq: 1, ops });
const eight = Array.from({ length: 8 }, (_, i) => put(`k${i}`));

async function shardRoutes(): Promise<{ routes: ShardRoutes; sent: number[] }> {
  const partitioner = await createPartitioner(64);
  const config = initialConfig(await loadXxh64(), [1, 2].map((id) => ({ id, replicas: [] })), 64);
  const watcher = { current: config, refresh: async () => config, waitFor: async () => config } as unknown as ConfigWatcher;
  const sent: number[] = [];
  const groups = { send: async (g: number): Promise<Response> => (sent.push(g), { kind: 'ok' }) } as unknown as GroupConnections;
  const router = stubRouter({ checkSizes: (k, v) => checkKeyValue(k, v, limits) });
  const routes = new ShardRoutes({ group: 1, watcher, partitioner, groups, local: async () => (sent.push(1), { kind: 'ok' }), refusal: (req) => router.refusal(req) });
  return { routes, sent };
}

const run = (routes: ShardRoutes, req: Request): Promise<Response> => routes.execute(req, { type: FrameType.Batch, body: new Uint8Array(0), hops: 0 }, Date.now() + 5000);

describe('the shard router refuses a batch with one op over the limits whole', () => {
  const cases: [string, Request, string][] = [
    ['a key over the limit', batchOf(...eight, put('x'.repeat(101))), 'TOO_LARGE'],
    ['a value over the limit', batchOf(...eight, put('x', 'v'.repeat(1001))), 'TOO_LARGE'],
    ['a delete of a key over the limit', batchOf(...eight, { op: 'delete', key: Buffer.from('x'.repeat(5000)) }), 'TOO_LARGE'],
    ['the empty key', batchOf(...eight, put('')), 'BAD_REQUEST'],
  ];
  for (const [what, req, code] of cases) {
    it(`${what}: ${code}, no part sent`, async () => {
      const { routes, sent } = await shardRoutes();
      const res = await run(routes, req);
      assert.equal(res.kind === 'error' && res.error.code, code);
      assert.deepEqual(sent, [], 'no part was sent anywhere');
    });
  }
  it('a batch within the limits is split and sent', async () => {
    const { routes, sent } = await shardRoutes();
    assert.deepEqual(await run(routes, batchOf(...eight, put('x'.repeat(100), 'v'.repeat(1000)))), { kind: 'ok' });
    assert.ok(sent.length > 1, 'split over both groups');
  });
});

it("the clients' key limit is the storage's", () => {
  assert.equal(MAX_KEY_BYTES, MAX_STORABLE_KEY_BYTES);
});

describe('the clients refuse a batch with a key no server can store, before sending anything', () => {
  const fake = clientsOnFakeReplica();
  const clients = fake.clients;
  const ok = Array.from({ length: 8 }, (_, i) => ({ op: 'put' as const, key: `k${i}`, value: 'v' }));
  const cases: [string, Parameters<KvsClient['batch']>[0], string][] = [
    ['a 5000-byte key', [...ok, { op: 'put', key: 'k'.repeat(5000), value: 'v' }], 'TOO_LARGE'],
    ['a 4027-byte key to delete', [...ok, { op: 'delete', key: new Uint8Array(4027) }], 'TOO_LARGE'],
    ['the empty key', [...ok, { op: 'put', key: '', value: 'v' }], 'BAD_REQUEST'],
  ];
  for (const [what, ops, code] of cases) {
    it(`${what}: ${code}`, async () => {
      for (const c of clients) {
        const before = fake.replica.seen.length;
        await assert.rejects(c.batch(ops), (e: unknown) => e instanceof KvsError && e.code === code, c.constructor.name);
        assert.equal(fake.replica.seen.length, before, `${c.constructor.name} sent nothing`);
      }
    });
  }
  it('a 4026-byte key is sent', async () => {
    for (const c of clients) await c.batch([...ok, { op: 'put', key: 'k'.repeat(4026), value: 'v' }]);
  });
});
