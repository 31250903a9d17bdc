// A replica that has known no leader for longer than an election takes (cut off from its group by a
// partition that leaves the others a quorum: pre-vote keeps it from disrupting them) answers
// NOT_LEADER at once, so clients move to another replica. A chaos run measured a pairwise partition
// cutting throughput ~30x while every request to such a replica waited out its deadline. During an
// ordinary election (leaderless for less) requests still wait for the next leader.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NotLeaderError } from '../../src/replica/replica.ts';
import type { Request } from '../../src/wire/index.ts';
import { callLocal, stubRouter, type StubReplica } from '../support/stub-router.ts';

const put: Request = { op: 'put', key: Buffer.from('k'), value: Buffer.from('v'), clientId: 7n, seq: 1 };
const read: Request = { op: 'get', key: Buffer.from('k'), consistency: 'linearizable' };

function leaderless(leaderlessForMs: number, electedAfterMs?: number): StubReplica {
  const start = Date.now();
  const replica: StubReplica = {
    isLeader: false,
    get leader() {
      return electedAfterMs !== undefined && Date.now() - start >= electedAfterMs ? 2 : 0;
    },
    leaderlessForMs,
    readBarrier: () => Promise.reject(new NotLeaderError(0, 'no leader to confirm the read')),
  };
  return replica;
}

describe('a replica without a leader', () => {
  it('cut off for long: writes and linearizable reads get NOT_LEADER at once, not at the deadline', async () => {
    const router = stubRouter({ replica: leaderless(60_000), strandedAfterMs: 1500, requestTimeoutMs: 30_000 });
    for (const req of [put, read]) {
      const started = Date.now();
      const res = await callLocal(router, req, { deadline: Date.now() + 30_000 });
      assert.equal(res.kind === 'error' && res.error.code, 'NOT_LEADER', req.op);
      assert.ok(Date.now() - started < 15_000, `${req.op} answered before half its deadline`);
    }
  });

  it('in an ordinary election: a write waits for the next leader and is relayed to it', async () => {
    const relayed: number[] = [];
    const router = stubRouter({
      replica: leaderless(100, 200),
      strandedAfterMs: 1500,
      forwarder: { forward: async (to) => (relayed.push(to), { type: 0x80, body: new Uint8Array(0) }), addressOf: () => '' },
    });
    await callLocal(router, put);
    assert.deepEqual(relayed, [2], 'relayed to the leader elected meanwhile');
  });
});
