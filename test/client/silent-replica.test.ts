// A replica that accepts connections but never answers (what a network partition looks like from
// the sender's side: no reset, no error, nothing). Neither the client nor a server relaying to
// another shard group may spend the whole deadline on it: each attempt waits a bounded time, then
// the call moves on to another replica with the same (clientId, seq), and the silent replica is
// tried last for the calls after.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { KvsClient } from '../../src/client/client.ts';
import type { ClusterConfig } from '../../src/placement/config.ts';
import { GroupConnections } from '../../src/router/groups.ts';
import type { Request } from '../../src/wire/index.ts';
import { fakeReplica, type FakeReplica } from './fake-replica.ts';

interface Seen {
  server: 'silent' | 'answering';
  req: Request;
}

describe('a replica that never answers', () => {
  const seen: Seen[] = [];
  let silent: FakeReplica;
  let answering: FakeReplica;
  before(async () => {
    silent = await fakeReplica({ answer: () => undefined, onRequest: (req) => seen.push({ server: 'silent', req }) });
    answering = await fakeReplica({ onRequest: (req) => seen.push({ server: 'answering', req }) });
  });
  /** A fresh relay (nothing learned yet) to group 2: the silent replica first, then the answering one. */
  const relays: GroupConnections[] = [];
  function freshRelay(): GroupConnections {
    const config = { groups: [{ id: 2, replicas: [{ id: 201, address: silent.address }, { id: 202, address: answering.address }] }] } as unknown as ClusterConfig;
    const relay = new GroupConnections(() => config, 300);
    relays.push(relay);
    return relay;
  }
  after(() => {
    for (const relay of relays) relay.close();
    for (const r of [silent, answering]) {
      r.close();
    }
  });

  it('costs one attempt, not the deadline: the write is retried elsewhere with the same session, later calls avoid it', async () => {
    // Round-robin starts at the second endpoint: the first attempt goes to the silent one.
    const client = new KvsClient({ endpoints: [answering.address, silent.address], timeoutMs: 8000, attemptTimeoutMs: 300 });
    try {
      await client.put('k', 'v');
      const puts = seen.filter((s) => s.req.op === 'put');
      assert.deepEqual(puts.map((s) => s.server), ['silent', 'answering'], 'one attempt at the silent replica, then the other');
      const [a, b] = puts.map((s) => s.req as Extract<Request, { op: 'put' }>);
      assert.equal(a!.clientId, b!.clientId, 'the retry is the same write (same client id)');
      assert.equal(a!.seq, b!.seq, 'the retry is the same write (same seq)');

      const before = seen.length;
      for (let i = 0; i < 4; i++) await client.get(`r${i}`);
      assert.deepEqual(new Set(seen.slice(before).map((s) => s.server)), new Set(['answering']), 'reads pass over the silent replica');
    } finally {
      client.close();
    }
  });

  it("a server's relay to another shard group: one bounded attempt at the silent replica, then the next; later relays start elsewhere", async () => {
    const groups = freshRelay();
    const before = seen.length;
    const res = await groups.send(2, { op: 'get', key: Buffer.from('k'), consistency: 'linearizable' }, Date.now() + 8000);
    assert.deepEqual(res, { kind: 'value', value: null });
    assert.deepEqual(seen.slice(before).map((s) => s.server), ['silent', 'answering']);
    const next = seen.length;
    for (let i = 0; i < 3; i++) await groups.send(2, { op: 'get', key: Buffer.from(`k${i}`), consistency: 'linearizable' }, Date.now() + 8000);
    assert.deepEqual(new Set(seen.slice(next).map((s) => s.server)), new Set(['answering']), 'the silent replica is tried last');
  });

  it('a relayed write without a session is never sent twice: after an unanswered attempt its outcome is unknown (TIMEOUT)', async () => {
    const before = seen.length;
    const sessionless = await freshRelay().send(2, { op: 'put', key: Buffer.from('door'), value: Buffer.from('v'), clientId: 0n, seq: 0 }, Date.now() + 8000);
    assert.equal(sessionless.kind === 'error' && sessionless.error.code, 'TIMEOUT');
    assert.deepEqual(seen.slice(before).map((s) => s.server), ['silent'], 'not resent to the other replica');
    // With a session the state machine recognises a second copy, so it goes on to the next replica.
    const next = seen.length;
    const withSession = await freshRelay().send(2, { op: 'put', key: Buffer.from('client'), value: Buffer.from('v'), clientId: 7n, seq: 1 }, Date.now() + 8000);
    assert.deepEqual(withSession, { kind: 'ok' });
    assert.deepEqual(seen.slice(next).map((s) => s.server), ['silent', 'answering']);
  });
});
