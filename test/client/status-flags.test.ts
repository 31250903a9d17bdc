// `kvs status` shows whether a replica is blank (StatusInfo.blank): the client asks for STATUS_INFO's
// flags byte with a one-byte STATUS body. A replica of an earlier version refuses that body
// (BAD_REQUEST) and must still be reported, asked the old way, with blank unknown.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KvsClient } from '../../src/client/index.ts';
import type { Request, Response, StatusInfo } from '../../src/wire/index.ts';
import { fakeReplica } from './fake-replica.ts';

const info: StatusInfo = { replicaId: 3, groupId: 1, role: 'follower', term: 4, leaderId: 1, leaderAddr: '127.0.0.1:7001', commitIndex: 12, appliedIndex: 0, epoch: 0 };

async function statusFrom(answer: (req: Request) => Response): Promise<{ got: StatusInfo; seen: Request[] }> {
  const replica = await fakeReplica({ answer });
  const client = new KvsClient({ endpoints: [replica.address], timeoutMs: 2000 });
  try {
    return { got: await client.status(replica.address), seen: replica.seen };
  } finally {
    client.close();
    replica.close();
  }
}

describe("a replica's status, blank included", () => {
  it('a replica that reports flags answers in one request, blank included', async () => {
    const { got, seen } = await statusFrom((req) => ({ kind: 'status', info: req.op === 'status' && req.flags ? { ...info, blank: true } : info }));
    assert.deepEqual(got, { ...info, blank: true });
    assert.deepEqual(seen, [{ op: 'status', flags: true }]);
  });

  it('a replica of an earlier version (a STATUS body is malformed to it) is asked again the old way', async () => {
    const { got, seen } = await statusFrom((req) =>
      req.op === 'status' && req.flags ? { kind: 'error', error: { code: 'BAD_REQUEST', message: 'request: 1 trailing byte' } } : { kind: 'status', info },
    );
    assert.deepEqual(got, info);
    assert.equal('blank' in got, false);
    assert.deepEqual(seen, [{ op: 'status', flags: true }, { op: 'status' }]);
  });
});
