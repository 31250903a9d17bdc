// Answers that say "not applied" (UNAVAILABLE) make callers resend: group-call.ts retries them even
// for writes without a session, and clients report them as not applied. So a write that may have
// applied must be answered TIMEOUT ("may still apply"). Found by an outside review:
//  - a write relayed to the leader whose link failed after the FORWARD left (the leader received
//    and applied it, then its process died) was answered UNAVAILABLE;
//  - a batch split across partitions answered its first failed part's code, so an UNAVAILABLE part
//    hid another part's TIMEOUT, or parts that had applied.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createPartitioner, loadXxh64 } from '../../src/partition/index.ts';
import { initialConfig } from '../../src/placement/config.ts';
import type { ConfigWatcher } from '../../src/cluster/config-watcher.ts';
import { batchFailure } from '../../src/cluster/split-batch.ts';
import { GroupConnections } from '../../src/router/groups.ts';
import { ShardRoutes } from '../../src/router/sharded.ts';
import { LinkError } from '../../src/transport/carrier.ts';
import { FrameDecoder, FrameType, encodeFrame, type Request, type Response, type WireError } from '../../src/wire/index.ts';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { callLocal, stubRouter } from '../support/stub-router.ts';
import { fakeReplica } from '../client/fake-replica.ts';

const put: Request = { op: 'put', key: Buffer.from('k'), value: Buffer.from('v'), clientId: 0n, seq: 0 };

describe('a write whose outcome is unknown is answered TIMEOUT', () => {
  it('relayed to the leader, its link lost after the request left: TIMEOUT; before it left: retried', async () => {
    let sent = 0;
    const lostAfterSending = stubRouter({
      replica: { isLeader: false, leader: 2, leaderlessForMs: 0 },
      forwarder: { forward: () => (sent++, Promise.reject(new LinkError('connection to 127.0.0.1:1 lost'))), addressOf: () => '' },
    });
    const res = await callLocal(lostAfterSending, put);
    assert.equal(res.kind === 'error' && res.error.code, 'TIMEOUT', JSON.stringify(res));
    assert.equal(sent, 1, 'not sent again: it may have applied');

    let tries = 0;
    const neverLeft = stubRouter({
      replica: { isLeader: false, leader: 2, leaderlessForMs: 0 },
      forwarder: {
        forward: async () => (++tries === 1 ? Promise.reject(new LinkError('not connected', false)) : { type: 0x80, body: new Uint8Array(0) }),
        addressOf: () => '',
      },
    });
    assert.deepEqual(await callLocal(neverLeft, put), { kind: 'ok' });
    assert.equal(tries, 2, 'a request that never left is simply sent again');
  });

  it('a proposal failed by an error the router does not know (the replica stopped): TIMEOUT, not UNAVAILABLE', async () => {
    // Found by the doors' fault test: the RESP door answers UNAVAILABLE as -TRYAGAIN ("not
    // applied"), and Replica.stop() fails pending proposals, which other replicas may commit.
    const stopped = stubRouter({ replica: { isLeader: true, leader: 1, leaderlessForMs: 0, propose: () => Promise.reject(new Error('replica stopped')) } as never });
    const res = await callLocal(stopped, put);
    assert.equal(res.kind === 'error' && res.error.code, 'TIMEOUT', JSON.stringify(res));
    assert.match(res.kind === 'error' ? res.error.message : '', /replica stopped \(it may still apply\)/);
    // A read failed the same way stays UNAVAILABLE: nothing to apply.
    const get: Request = { op: 'get', key: Buffer.from('k'), consistency: 'stale' } as Request;
    const failing = stubRouter({ replica: { visibleBarrier: () => Promise.reject(new Error('replica stopped')) } as never });
    const r = await callLocal(failing, get);
    assert.equal(r.kind === 'error' && r.error.code, 'UNAVAILABLE', JSON.stringify(r));
  });

  it('a batch split across groups: a part in doubt or parts applied make it TIMEOUT', async () => {
    const partitioner = await createPartitioner(64);
    const config = initialConfig(await loadXxh64(), [1, 2].map((id) => ({ id, replicas: [] })), 64);
    const watcher = { current: config, refresh: async () => config, waitFor: async () => config } as unknown as ConfigWatcher;
    const keys = Array.from({ length: 200 }, (_, i) => Buffer.from(`key-${i}`));
    const k1 = keys.find((k) => config.owner[partitioner.partitionOf(k)] === 1)!;
    const k2 = keys.find((k) => config.owner[partitioner.partitionOf(k)] === 2)!;
    const batch: Request = { op: 'batch', ops: [{ op: 'put', key: k1, value: Buffer.from('a') }, { op: 'put', key: k2, value: Buffer.from('b') }], clientId: 0n, seq: 0 };
    const unavailable: Response = { kind: 'error', error: { code: 'UNAVAILABLE', message: 'no quorum' } };
    const timeout: Response = { kind: 'error', error: { code: 'TIMEOUT', message: 'request timed out (it may still apply)' } };
    const answer = async (local: Response, remote: Response): Promise<Response> => {
      const routes = new ShardRoutes({ group: 1, watcher, partitioner, groups: { send: async () => remote } as unknown as GroupConnections, local: async () => local });
      return routes.execute(batch, { type: 0, body: new Uint8Array(), hops: 0 }, Date.now() + 2000);
    };
    const code = (r: Response): string => (r.kind === 'error' ? r.error.code : r.kind);
    assert.equal(code(await answer(unavailable, timeout)), 'TIMEOUT', 'the local part failed first, the other may have applied');
    const partly = await answer({ kind: 'ok' }, unavailable);
    assert.equal(code(partly), 'TIMEOUT', 'one part applied');
    assert.match(partly.kind === 'error' ? partly.error.message : '', /1 of 2 parts of the batch applied.*UNAVAILABLE: no quorum/);
    assert.equal(code(await answer(unavailable, unavailable)), 'UNAVAILABLE', 'no part applied');
    assert.equal(code(await answer({ kind: 'ok' }, { kind: 'ok' })), 'ok');
  });

  it('relayed to another group: an attempt left unanswered, then WRONG_GROUP until the deadline, or a stale refusal of the resend: TIMEOUT', async () => {
    // The relay (GroupConnections) resends a write with a session after an unanswered attempt; a
    // WRONG_GROUP from the next replica says only that this copy did not apply. The shard routing
    // dropped the doubt and answered WRONG_GROUP at the deadline (-TRYAGAIN on the RESP door).
    const partitioner = await createPartitioner(64);
    const wrongGroup: Response = { kind: 'error', error: { code: 'WRONG_GROUP', message: 'partition moved', epoch: 1 } };
    const stale: Response = { kind: 'error', error: { code: 'BAD_REQUEST', message: 'stale write: this client already sent a newer one (seq too old)' } };
    // The second replica answers WRONG_GROUP throughout; or first, then refuses the resend as stale.
    for (const later of [wrongGroup, stale]) {
      const silent = await fakeReplica({ answer: () => undefined });
      let n = 0;
      const moved = await fakeReplica({ answer: () => (n++ === 0 ? wrongGroup : later) });
      const config = initialConfig(await loadXxh64(), [{ id: 1, replicas: [] }, { id: 2, replicas: [{ id: 201, address: silent.address }, { id: 202, address: moved.address }] }], 64);
      const watcher = { current: config, refresh: async () => config, waitFor: async () => config } as unknown as ConfigWatcher;
      const key = Array.from({ length: 200 }, (_, i) => Buffer.from(`key-${i}`)).find((k) => config.owner[partitioner.partitionOf(k)] === 2)!;
      const relay = new GroupConnections(() => config, 300);
      try {
        const routes = new ShardRoutes({ group: 1, watcher, partitioner, groups: relay, local: async () => ({ kind: 'ok' }) });
        const res = await routes.execute({ op: 'put', key, value: Buffer.from('v'), clientId: 7n, seq: 1 }, { type: 0, body: new Uint8Array(), hops: 0 }, Date.now() + 1200);
        assert.equal(res.kind === 'error' && res.error.code, 'TIMEOUT', JSON.stringify(res));
        assert.match(res.kind === 'error' ? res.error.message : '', /may or may not have been applied/);
        assert.ok(silent.seen.length >= 1 && moved.seen.length >= 2, 'both replicas were asked, the second again after WRONG_GROUP');
      } finally {
        relay.close();
        silent.close();
        moved.close();
      }
    }
  });

  it('relayed to another group, answered with a frame that cannot be decoded: TIMEOUT (the write may have applied), not UNAVAILABLE', async () => {
    // The relay decoded the answer outside the group call: the decode error rejected the whole
    // call and the door answered UNAVAILABLE ("not applied"), though the remote group got the write.
    const seen: number[] = [];
    const sockets = new Set<Socket>();
    const garbage = createServer((sock) => {
      sockets.add(sock);
      const decoder = new FrameDecoder();
      sock.on('data', (b) => {
        decoder.push(b);
        for (let f = decoder.read(); f !== null; f = decoder.read()) {
          seen.push(f.type);
          // A VALUE frame whose body ends inside its length prefix.
          sock.write(encodeFrame(FrameType.Value, f.requestId, Buffer.from([0xff, 0x00, 0x01])));
        }
      });
      sock.on('error', () => {});
    });
    await new Promise<void>((r) => garbage.listen(0, '127.0.0.1', r));
    const address = `127.0.0.1:${(garbage.address() as AddressInfo).port}`;
    const config = initialConfig(await loadXxh64(), [{ id: 1, replicas: [] }, { id: 2, replicas: [{ id: 201, address }] }], 64);
    const relay = new GroupConnections(() => config, 300);
    try {
      const res = await relay.send(2, put, Date.now() + 1500);
      assert.equal(res.kind === 'error' && res.error.code, 'TIMEOUT', JSON.stringify(res));
      assert.match(res.kind === 'error' ? res.error.message : '', /may or may not have been applied.*malformed answer/);
      assert.deepEqual(seen, [FrameType.Forward], 'a write without a session is not sent again');
      // Through the shard routing, as the doors call it.
      const partitioner = await createPartitioner(64);
      const watcher = { current: config, refresh: async () => config, waitFor: async () => config } as unknown as ConfigWatcher;
      const key = Array.from({ length: 200 }, (_, i) => Buffer.from(`key-${i}`)).find((k) => config.owner[partitioner.partitionOf(k)] === 2)!;
      const routes = new ShardRoutes({ group: 1, watcher, partitioner, groups: relay, local: async () => ({ kind: 'ok' }) });
      const routed = await routes.execute({ ...put, key } as Request, { type: 0, body: new Uint8Array(), hops: 0 }, Date.now() + 1500);
      assert.equal(routed.kind === 'error' && routed.error.code, 'TIMEOUT', JSON.stringify(routed));
    } finally {
      relay.close();
      for (const s of sockets) s.destroy();
      garbage.close();
    }
  });

  it('batchFailure: the rule both splitters follow', () => {
    const u: WireError = { code: 'UNAVAILABLE', message: 'u' };
    const t: WireError = { code: 'TIMEOUT', message: 't' };
    const b: WireError = { code: 'BAD_REQUEST', message: 'b' };
    const wireFailure = (failed: WireError[], parts: number): WireError | undefined => batchFailure<WireError>(failed, parts, (e) => e, (message) => ({ code: 'TIMEOUT', message }));
    assert.equal(wireFailure([], 3), undefined);
    assert.equal(wireFailure([u, t], 2), t);
    assert.equal(wireFailure([b, u], 2), b, 'every part failed and none in doubt: the first failure');
    assert.equal(wireFailure([u], 3)?.code, 'TIMEOUT');
  });
});
