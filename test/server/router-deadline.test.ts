// A request whose deadline has already passed when it reaches the replica (an event-loop stall on
// a busy machine is enough) must not take the replica process down: the read barrier or proposal
// it started is abandoned, and its later rejection must not be an unhandled one (Node exits on
// those). Seen in `kvs up` on a loaded machine: placement replicas exited with "NotLeaderError: no
// leader to confirm the read" while an election was under way.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NotLeaderError } from '../../src/replica/replica.ts';
import type { Request } from '../../src/wire/index.ts';
import { callLocal, stubRouter } from '../support/stub-router.ts';

describe('a request that arrives after its deadline', () => {
  it('gets TIMEOUT, and the barrier it left behind failing later is not an unhandled rejection', async () => {
    let failBarrier!: (e: Error) => void;
    const router = stubRouter({
      replica: { isLeader: false, leader: 0, readBarrier: () => new Promise<void>((_, reject) => (failBarrier = reject)) },
      requestTimeoutMs: 1000,
    });
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => void unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      const req: Request = { op: 'get', key: Buffer.from('k'), consistency: 'linearizable' };
      const res = await callLocal(router, req, { deadline: Date.now() - 1 });
      assert.equal(res.kind === 'error' && res.error.code, 'TIMEOUT');
      failBarrier(new NotLeaderError(0, 'no leader to confirm the read')); // the election ends without us
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
