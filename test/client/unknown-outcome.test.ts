// A write whose outcome the client cannot know fails with TIMEOUT ("may or may not have been
// applied"), never with a code that says "not applied". Regression (outside review, 2026-12-06): with
// two of three replicas stopped, writes failed with UNREACHABLE ("no answer from ...") or NOT_LEADER
// after an attempt had reached the stopped leader, and were applied once it resumed. UNREACHABLE
// stays for a write no attempt could have delivered (connection refused).
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { KvsClient, KvsError } from '../../src/client/client.ts';
import { ShardedClient } from '../../src/client/index.ts';
import { loadXxh64 } from '../../src/partition/index.ts';
import { initialConfig } from '../../src/placement/config.ts';
import { Responsiveness } from '../../src/cluster/responsiveness.ts';
import { UnreachableError, callGroup, type GroupCall } from '../../src/cluster/group-call.ts';
import { FrameDecoder, decodeRequest, encodeResponse, type Frame, type Response } from '../../src/wire/index.ts';

const notLeader: Response = { kind: 'error', error: { code: 'NOT_LEADER', message: 'not the leader', leaderId: 0, leaderAddr: '' } };
const unknown = (e: unknown): boolean => e instanceof KvsError && e.code === 'TIMEOUT' && /may or may not have been applied/.test(e.message);

/** A group call to a (sent, never answered) and b, c (NOT_LEADER, no leader known). */
function stoppedLeader(over: Partial<GroupCall>): GroupCall {
  return {
    replicas: ['a', 'b', 'c'],
    leader: 'a',
    kind: 'write',
    resendSafe: true,
    deadline: Date.now() + 300,
    pacing: new Responsiveness(100),
    send: (addr) => (addr === 'a' ? Promise.reject(new UnreachableError('no answer from a within 100 ms', true)) : Promise.resolve(notLeader)),
    onLeader: () => {},
    ...over,
  };
}

describe('a write whose outcome is unknown', () => {
  it('group call: at the deadline after an unanswered attempt it is unknown, not the last NOT_LEADER', async () => {
    const out = await callGroup(stoppedLeader({}));
    assert.equal(out.t, 'unknown');
    assert.match(out.t === 'unknown' ? out.message : '', /may or may not have been applied.*no answer from a/);
    // One pass for a caller that retries itself: the last answer, with the doubt to carry on.
    const one = await callGroup(stoppedLeader({ passes: 1, deadline: Date.now() + 10_000 }));
    assert.equal(one.t, 'answer');
    assert.match(one.t === 'answer' ? (one.doubt ?? '') : '', /no answer from a/);
    // A read is not a write: no replica answered.
    const read = await callGroup(stoppedLeader({ kind: 'read', send: () => Promise.reject(new UnreachableError('no answer', true)) }));
    assert.equal(read.t, 'unreachable');
    // Nothing could have arrived (refused everywhere): not applied.
    const refused = await callGroup(stoppedLeader({ send: () => Promise.reject(new UnreachableError('connect ECONNREFUSED')) }));
    assert.equal(refused.t, 'unreachable');
  });

  it('group call: WRONG_GROUP after an unanswered attempt carries the doubt (found in review, 2026-12-07)', async () => {
    const wrongGroup: Response = { kind: 'error', error: { code: 'WRONG_GROUP', message: 'moved', epoch: 3 } };
    const out = await callGroup(stoppedLeader({ deadline: Date.now() + 10_000, send: (addr) => (addr === 'a' ? Promise.reject(new UnreachableError('no answer from a', true)) : Promise.resolve(wrongGroup)) }));
    assert.equal(out.t, 'answer');
    assert.match(out.t === 'answer' ? (out.doubt ?? '') : '', /no answer from a/, 'WRONG_GROUP says nothing of the attempt at a');
  });

  describe('KvsClient', () => {
    // One replica that reads and never answers (the stopped leader), one that answers every write
    // NOT_LEADER without a hint (a follower of a group without a quorum).
    const servers: Server[] = [];
    const sockets = new Set<Socket>();
    let silent = '';
    let follower = '';
    let refused = '';
    const listen = (onSocket: (s: Socket) => void): Promise<string> => {
      const server = createServer((s) => {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => {});
        onSocket(s);
      });
      servers.push(server);
      return new Promise((r) => server.listen(0, '127.0.0.1', () => r(`127.0.0.1:${(server.address() as AddressInfo).port}`)));
    };
    /** A replica that answers each frame with `answer`'s response, or with the frame `answer` made by hand. */
    const answering = (answer: (f: Frame) => Response | Uint8Array): Promise<string> =>
      listen((s) => {
        const d = new FrameDecoder();
        s.on('data', (b) => {
          d.push(b);
          for (let f = d.read(); f !== null; f = d.read()) {
            const res = answer(f);
            s.write(res instanceof Uint8Array ? res : encodeResponse(f.requestId, res));
          }
        });
      });
    /** A replica that answers its first request WRONG_GROUP, every later one "stale write"; `answers` counts (and may be reset). */
    const wrongGroupThenStale = async (): Promise<{ address: string; answers: number }> => {
      const r = { address: '', answers: 0 };
      r.address = await answering(() =>
        r.answers++ === 0
          ? { kind: 'error', error: { code: 'WRONG_GROUP', message: 'relay ran out of time during a hand-off', epoch: 4 } }
          : { kind: 'error', error: { code: 'BAD_REQUEST', message: 'stale write: this client already sent a newer one (seq too old)' } },
      );
      return r;
    };
    before(async () => {
      silent = await listen((s) => s.resume());
      follower = await answering((f) => {
        decodeRequest(f.type, f.body);
        return notLeader;
      });
      const gone = createServer();
      refused = await new Promise<string>((r) => gone.listen(0, '127.0.0.1', () => r(`127.0.0.1:${(gone.address() as AddressInfo).port}`)));
      await new Promise((r) => gone.close(r));
    });
    after(() => {
      for (const s of sockets) s.destroy();
      for (const s of servers) s.close();
    });

    it('fails with TIMEOUT after an attempt that got no answer, whatever the other replicas said', async () => {
      const timeoutMs = 1500;
      const only = new KvsClient({ endpoints: [silent], timeoutMs });
      const mixed = new KvsClient({ endpoints: [follower, silent], timeoutMs }); // the first call starts at the silent one
      try {
        await assert.rejects(only.put('k', 'v'), unknown);
        await assert.rejects(mixed.put('k', 'v'), unknown);
        await assert.rejects(mixed.cas('k', null, 'v'), unknown);
      } finally {
        only.close();
        mixed.close();
      }
    });

    it('a WRONG_GROUP after an attempt that got no answer is TIMEOUT, not "not applied"; alone it is retried until the deadline', async () => {
      let wrongGroups = 0;
      const moving = await answering((f) => {
        decodeRequest(f.type, f.body);
        wrongGroups++;
        return { kind: 'error', error: { code: 'WRONG_GROUP', message: 'relay ran out of time during a hand-off', epoch: 4 } };
      });
      const mixed = new KvsClient({ endpoints: [moving, silent], timeoutMs: 1500 }); // the first call starts at the silent one
      const alone = new KvsClient({ endpoints: [moving], timeoutMs: 1000 });
      try {
        await assert.rejects(mixed.put('k', 'v'), unknown);
        wrongGroups = 0;
        await assert.rejects(alone.put('k', 'v'), (e: unknown) => e instanceof KvsError && e.code === 'WRONG_GROUP');
        assert.ok(wrongGroups > 1, `retried while the deadline lasted (${wrongGroups} attempts)`);
      } finally {
        mixed.close();
        alone.close();
      }
    });

    it('a resend refused as stale in a later round, after an attempt that got no answer: TIMEOUT, not the stale refusal', async () => {
      // Round 1: no answer from the silent replica, then WRONG_GROUP (the doubt carried on); round 2:
      // the resend is refused as stale, which says only that this copy did not apply. The stale
      // check saw only the doubt of its own round, so the client threw BAD_REQUEST "stale write".
      const thenStale = await wrongGroupThenStale();
      const kv = new KvsClient({ endpoints: [thenStale.address, silent], timeoutMs: 3000 }); // the first call starts at the silent one
      try {
        await assert.rejects(kv.put('k', 'v'), unknown);
        assert.ok(thenStale.answers >= 2, `the write was resent after WRONG_GROUP (${thenStale.answers} answers)`);
      } finally {
        kv.close();
      }
      // The smart client, the same across its own rounds (a refresh after WRONG_GROUP, then the resend).
      thenStale.answers = 0;
      const config = initialConfig(await loadXxh64(), [{ id: 1, replicas: [{ id: 101, address: silent }, { id: 102, address: thenStale.address }] }], 64);
      const source = { current: config, refresh: async () => config, waitFor: async () => config, onChange: () => () => {}, stop: () => {} };
      const sharded = new ShardedClient({ placement: [], configSource: source, pollMs: 0, timeoutMs: 3000, attemptTimeoutMs: 300 }); // its first pass starts at the silent one
      try {
        await assert.rejects(sharded.put('k', 'v'), unknown);
        assert.ok(thenStale.answers >= 2, `the write was resent after WRONG_GROUP (${thenStale.answers} answers)`);
      } finally {
        sharded.close();
      }
    });

    it('KvsClient: the TIMEOUT after a later round\'s stale refusal says why, not "no answer before the deadline"', async () => {
      // The call ends at the stale refusal, long before its deadline: the message claimed the deadline passed.
      const thenStale = await wrongGroupThenStale();
      const kv = new KvsClient({ endpoints: [thenStale.address, silent], timeoutMs: 3000 }); // the first call starts at the silent one
      try {
        await assert.rejects(kv.put('k', 'v'), (e: unknown) => unknown(e) && /a later write of this session was applied first/.test((e as Error).message) && !/before the deadline/.test((e as Error).message));
      } finally {
        kv.close();
      }
    });

    it('a malformed answer is a KvsError: a read goes on to another replica, a write is TIMEOUT (found in review)', async () => {
      // An OK frame retyped as a value answer, whose body it lacks.
      const valueType = encodeResponse(0, { kind: 'value', value: null })[4]!;
      const garbled = await answering((f) => {
        const frame = encodeResponse(f.requestId, { kind: 'ok' });
        frame[4] = valueType;
        return frame;
      });
      const healthy = await answering(() => ({ kind: 'value', value: Buffer.from('v') }));
      const reader = new KvsClient({ endpoints: [garbled, healthy], timeoutMs: 2000 });
      const writer = new KvsClient({ endpoints: [garbled], timeoutMs: 1000 });
      try {
        assert.equal(Buffer.from((await reader.get('k'))!).toString(), 'v');
        await assert.rejects(writer.put('k', 'v'), unknown);
      } finally {
        reader.close();
        writer.close();
      }
    });

    it('fails with UNREACHABLE when no attempt could have reached a replica, NOT_LEADER when every one said so', async () => {
      const kv = new KvsClient({ endpoints: [refused], timeoutMs: 500 });
      const nl = new KvsClient({ endpoints: [follower], timeoutMs: 500 });
      try {
        await assert.rejects(kv.put('k', 'v'), (e: unknown) => e instanceof KvsError && e.code === 'UNREACHABLE');
        await assert.rejects(nl.put('k', 'v'), (e: unknown) => e instanceof KvsError && e.code === 'NOT_LEADER');
      } finally {
        kv.close();
        nl.close();
      }
    });
  });
});
