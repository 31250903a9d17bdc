// A write whose request body is too big to relay to the leader or to replicate as one log entry,
// or a batch of more than MAX_BATCH_OPS operations, is refused with TOO_LARGE before anything is
// proposed or sent. Before this check, a gRPC Batch under
// gRPC's own message limit (600,000 empty puts: 4.2 MB of protobuf, 4.8 MB in our encoding) was
// appended by the leader, which then stopped on "raft message exceeds the frame limit", taking
// every replica of its process down.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MsgType, type Message } from '../../src/raft/types.ts';
import { encodeWrite } from '../../src/replica/commands.ts';
import { callLocal, stubRouter } from '../support/stub-router.ts';
import { Connection } from '../../src/cluster/connection.ts';
import { ShardRoutes } from '../../src/router/sharded.ts';
import { KvsError, ShardedClient } from '../../src/client/index.ts';
import type { GroupConnections } from '../../src/router/groups.ts';
import type { ConfigWatcher } from '../../src/cluster/config-watcher.ts';
import { createPartitioner, loadXxh64 } from '../../src/partition/index.ts';
import { initialConfig } from '../../src/placement/config.ts';
import {
  DEFAULT_MAX_FRAME_BYTES,
  FrameType,
  HEADER_BYTES,
  MAX_BATCH_OPS,
  MAX_REQUEST_BODY_BYTES,
  encodeForward,
  encodeRaftMessages,
  encodeRequest,
  requestBodySize,
  type Request,
  type Response,
} from '../../src/wire/index.ts';

/** The review's batch: 600,000 puts of one key with empty values. */
const hugeBatch: Request = { op: 'batch', clientId: 0n, seq: 0, ops: Array.from({ length: 600_000 }, () => ({ op: 'put' as const, key: Buffer.from('p'), value: new Uint8Array(0) })) };

test('a body of the largest allowed size fits a FORWARD frame and a Raft append of its entry', () => {
  const body = new Uint8Array(MAX_REQUEST_BODY_BYTES).fill(7);
  assert.ok(encodeForward(1, { type: FrameType.Batch, hops: 1, body }).length <= DEFAULT_MAX_FRAME_BYTES);
  const entry = { index: 2 ** 40, term: 2 ** 40, type: 0 as const, data: encodeWrite(Date.now(), FrameType.Batch, body) };
  const append: Message = { type: MsgType.Append, from: 2 ** 32 - 1, to: 1, term: 2 ** 40, prevIndex: 2 ** 40 - 1, prevTerm: 2 ** 40, entries: [entry], commit: 2 ** 40 };
  const frames = encodeRaftMessages([append, append]);
  assert.equal(frames.length, 2, 'one append per frame');
  for (const f of frames) assert.ok(f.length <= DEFAULT_MAX_FRAME_BYTES);
});

test('the router refuses a bigger write with TOO_LARGE and neither proposes nor relays it', async () => {
  const calls: string[] = [];
  for (const isLeader of [true, false]) {
    const router = stubRouter({
      replica: { isLeader, leader: isLeader ? 1 : 2, propose: () => (calls.push('propose'), Promise.resolve({ kind: 'ok' })) },
      forwarder: { forward: () => (calls.push('forward'), Promise.reject(new Error('unexpected'))), addressOf: () => '' },
    });
    const frame = encodeRequest(1, hugeBatch);
    assert.ok(frame.length - HEADER_BYTES > MAX_REQUEST_BODY_BYTES && frame.length - HEADER_BYTES < 5_000_000);
    const res = await callLocal(router, hugeBatch);
    assert.equal(res.kind === 'error' && res.error.code, 'TOO_LARGE');
    assert.match(res.kind === 'error' ? res.error.message : '', /exceeds the limit/);
  }
  assert.deepEqual(calls, []);
});

test('a client connection answers TOO_LARGE itself instead of sending a frame the door would refuse', async () => {
  assert.ok(requestBodySize(hugeBatch) > MAX_REQUEST_BODY_BYTES);
  // Nothing listens on port 9: a request that tried to connect would fail with a connection error.
  const res = await new Connection('127.0.0.1:9').request(hugeBatch, 1000);
  assert.equal(res.kind === 'error' && res.error.code, 'TOO_LARGE');
});

test('a batch of more than MAX_BATCH_OPS operations is refused whole, by a group and by the shard router', async () => {
  const batchOf = (n: number): Request => ({ op: 'batch', clientId: 7n, seq: 1, ops: Array.from({ length: n }, (_, i) => ({ op: 'put' as const, key: Buffer.from(`k${i}`), value: Buffer.from('v') })) });
  const proposed: number[] = [];
  const router = stubRouter({ replica: { isLeader: true, leader: 1, propose: () => (proposed.push(1), Promise.resolve({ kind: 'ok' })) } });
  const local = (req: Request): Promise<Response> => callLocal(router, req);
  const over = await local(batchOf(MAX_BATCH_OPS + 1));
  assert.equal(over.kind === 'error' && over.error.code, 'TOO_LARGE');
  assert.match(over.kind === 'error' ? over.error.message : '', /10001 operations exceeds the limit of 10000/);
  assert.deepEqual(proposed, []);
  assert.deepEqual(await local(batchOf(MAX_BATCH_OPS)), { kind: 'ok' });
  assert.deepEqual(proposed, [1]);

  // The shard router splits a batch per partition, each part under the bound: it must refuse first.
  const partitioner = await createPartitioner(64);
  const config = initialConfig(await loadXxh64(), [1, 2].map((id) => ({ id, replicas: [] })), 64);
  const watcher = { current: config, refresh: async () => config, waitFor: async () => config } as unknown as ConfigWatcher;
  const sent: number[] = [];
  const groups = { send: async (g: number): Promise<Response> => (sent.push(g), { kind: 'ok' }) } as unknown as GroupConnections;
  const routes = new ShardRoutes({ group: 1, watcher, partitioner, groups, local: async () => (sent.push(1), { kind: 'ok' }) });
  const res = await routes.execute(batchOf(MAX_BATCH_OPS + 1), { type: FrameType.Batch, body: new Uint8Array(0), hops: 0 }, Date.now() + 5000);
  assert.equal(res.kind === 'error' && res.error.code, 'TOO_LARGE');
  assert.deepEqual(sent, [], 'no part was sent anywhere');
});

test('the smart client refuses such a batch itself (it splits batches per partition, and each part would pass)', async () => {
  const client = new ShardedClient({ placement: ['127.0.0.1:9'], pollMs: 0, timeoutMs: 2000 });
  try {
    const ops = Array.from({ length: MAX_BATCH_OPS + 1 }, (_, i) => ({ op: 'put' as const, key: `k${i}`, value: 'v' }));
    await assert.rejects(client.batch(ops), (e: KvsError) => e.code === 'TOO_LARGE' && /exceeds the limit of 10000/.test(e.message));
  } finally {
    client.close();
  }
});
