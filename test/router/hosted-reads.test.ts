// Shard routing with a follower of the key's group in this process (kvs host): linearizable reads
// go to it (it serves them after a ReadIndex that reads arriving together share), writes and
// stale reads still go to the group over TCP, and a read the follower cannot serve in time (cut
// off from its leader, or it lost it) goes to the group over TCP within the same deadline.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createPartitioner, loadXxh64 } from '../../src/partition/index.ts';
import { initialConfig } from '../../src/placement/config.ts';
import type { ConfigWatcher } from '../../src/cluster/config-watcher.ts';
import type { GroupConnections } from '../../src/router/groups.ts';
import { hostReplica, type LocalGroupReplica } from '../../src/router/local-groups.ts';
import { ShardRoutes } from '../../src/router/sharded.ts';
import type { Request, Response } from '../../src/wire/index.ts';

const RAW = { type: 0, body: new Uint8Array(), hops: 0 };

/** Two groups; `key` is group 2's; what went over TCP to a group is recorded in `remote` (reads answer "remote"). */
async function twoGroups() {
  const partitioner = await createPartitioner(64);
  const config = initialConfig(await loadXxh64(), [1, 2].map((id) => ({ id, replicas: [] })), 64);
  const watcher = { current: config, refresh: async () => config, waitFor: async () => config } as unknown as ConfigWatcher;
  const key = Array.from({ length: 200 }, (_, i) => Buffer.from(`key-${i}`)).find((k) => config.owner[partitioner.partitionOf(k)] === 2)!;
  const remote: Request[] = [];
  const groups = {
    send: async (_g: number, req: Request): Promise<Response> => {
      remote.push(req);
      return req.op === 'get' ? { kind: 'value', value: Buffer.from('remote') } : { kind: 'ok' };
    },
  } as unknown as GroupConnections;
  return { partitioner, watcher, key, remote, groups };
}

async function setup(follower: (req: Request, deadline: number) => Promise<Response>, knowsLeader = true) {
  const { partitioner, watcher, key, remote, groups } = await twoGroups();
  const hosted: Request[] = [];
  const replica: LocalGroupReplica = {
    group: 2,
    isLeader: () => false,
    knowsLeader: () => knowsLeader,
    local: (req, _raw, deadline) => {
      hosted.push(req);
      return follower(req, deadline);
    },
  };
  const unhost = hostReplica(watcher, replica);
  // This replica is in group 1: keys of group 2 are another group's.
  const routes = new ShardRoutes({ group: 1, watcher, partitioner, groups, local: async () => assert.fail('group 1 is not asked'), hostedReadTryMs: 200 });
  return { routes, key, remote, hosted, unhost };
}

describe('reads through a follower hosted in this process', () => {
  it('a linearizable read is served by the hosted follower; a write and a stale read go over TCP', async () => {
    const s = await setup(async () => ({ kind: 'value', value: Buffer.from('hosted') }));
    const get = await s.routes.execute({ op: 'get', key: s.key, consistency: 'linearizable' }, RAW, Date.now() + 5000);
    assert.deepEqual(get, { kind: 'value', value: Buffer.from('hosted') });
    await s.routes.execute({ op: 'put', key: s.key, value: Buffer.from('v'), clientId: 1n, seq: 1 }, RAW, Date.now() + 5000);
    const stale = await s.routes.execute({ op: 'get', key: s.key, consistency: 'stale' }, RAW, Date.now() + 5000);
    assert.deepEqual(stale, { kind: 'value', value: Buffer.from('remote') }, 'a stale read must see writes answered by the leader: it goes there');
    assert.deepEqual(s.hosted.map((r) => r.op), ['get']);
    assert.deepEqual(s.remote.map((r) => r.op), ['put', 'get']);
    assert.equal(s.routes.stats.hostedReads, 1);
    s.unhost();
  });

  it('a follower that knows no leader is not asked', async () => {
    const s = await setup(async () => assert.fail('not asked'), false);
    const get = await s.routes.execute({ op: 'get', key: s.key, consistency: 'linearizable' }, RAW, Date.now() + 5000);
    assert.deepEqual(get, { kind: 'value', value: Buffer.from('remote') });
    s.unhost();
  });

  for (const code of ['TIMEOUT', 'NOT_LEADER', 'UNAVAILABLE'] as const) {
    it(`a read the follower answers ${code} goes to the group over TCP, within the deadline`, async () => {
      let given = 0;
      const s = await setup(async (_req, deadline) => {
        given = deadline - Date.now();
        return { kind: 'error', error: { code, message: 'cut off', ...(code === 'NOT_LEADER' ? { leaderId: 0, leaderAddr: '' } : {}) } } as Response;
      });
      const get = await s.routes.execute({ op: 'get', key: s.key, consistency: 'linearizable' }, RAW, Date.now() + 5000);
      assert.deepEqual(get, { kind: 'value', value: Buffer.from('remote') });
      assert.ok(given <= 200, `the follower got at most hostedReadTryMs (${given} ms)`);
      assert.equal(s.routes.stats.hostedReadsMissed, 1);
      s.unhost();
    });
  }

  it('a value or a client error from the follower is the answer', async () => {
    const s = await setup(async () => ({ kind: 'error', error: { code: 'BAD_REQUEST', message: 'no' } }));
    const get = await s.routes.execute({ op: 'get', key: s.key, consistency: 'linearizable' }, RAW, Date.now() + 5000);
    assert.equal(get.kind === 'error' && get.error.code, 'BAD_REQUEST');
    assert.equal(s.remote.length, 0);
    s.unhost();
  });
});

describe("reads of this replica's own group when it is cut off from its leader", () => {
  async function own(localAnswer: Response) {
    const { partitioner, watcher, key, remote, groups } = await twoGroups();
    const routes = new ShardRoutes({ group: 2, watcher, partitioner, groups, local: async () => localAnswer });
    return { routes, key, remote };
  }
  const notLeader: Response = { kind: 'error', error: { code: 'NOT_LEADER', message: 'cut off', leaderId: 0, leaderAddr: '' } };

  it('a linearizable read it answers NOT_LEADER goes to the group\'s other replicas', async () => {
    const s = await own(notLeader);
    const get = await s.routes.execute({ op: 'get', key: s.key, consistency: 'linearizable' }, RAW, Date.now() + 5000);
    assert.deepEqual(get, { kind: 'value', value: Buffer.from('remote') });
    assert.equal(s.routes.stats.ownReadsElsewhere, 1);
  });

  it('a write it answers NOT_LEADER is that answer (the client picks another door), and a value is served here', async () => {
    const s = await own(notLeader);
    const put = await s.routes.execute({ op: 'put', key: s.key, value: Buffer.from('v'), clientId: 1n, seq: 1 }, RAW, Date.now() + 5000);
    assert.equal(put.kind === 'error' && put.error.code, 'NOT_LEADER');
    const served = await own({ kind: 'value', value: Buffer.from('here') });
    assert.deepEqual(await served.routes.execute({ op: 'get', key: served.key, consistency: 'linearizable' }, RAW, Date.now() + 5000), { kind: 'value', value: Buffer.from('here') });
    assert.equal(s.remote.length + served.remote.length, 0);
  });
});
