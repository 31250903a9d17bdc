// End to end against a real 3-replica cluster of child processes: every op through every replica,
// pipelining, CAS races, scans, stale vs linearizable reads, exactly-once retries, half-closed
// clients, bad input.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Connection } from '../../src/cluster/connection.ts';
import { KvsClient } from '../../src/client/client.ts';
import { FrameDecoder, FrameType, decodeResponse, encodeFrame, encodeRequest, type Response } from '../../src/wire/index.ts';
import { TestCluster } from './cluster.ts';
import { waitFor } from '../support/wait.ts';

const dec = new TextDecoder();
const str = (b: Uint8Array | null): string | null => (b === null ? null : dec.decode(b));

describe('a 3-replica cluster', () => {
  let cluster: TestCluster;
  before(async () => {
    cluster = await TestCluster.start({ basePort: 22000 });
  });
  after(async () => {
    await cluster?.stop();
  });

  it('serves every op through every replica (followers forward writes)', async () => {
    for (const ep of cluster.endpoints()) {
      const c = new KvsClient({ endpoints: [ep] });
      try {
        const k = `k@${ep}`;
        await c.put(k, 'v1');
        assert.equal(str(await c.get(k)), 'v1');
        const swapped = await c.cas(k, 'v1', 'v2');
        assert.deepEqual({ ok: swapped.ok, current: str(swapped.current) }, { ok: true, current: 'v2' });
        const failed = await c.cas(k, 'nope', 'v3');
        assert.equal(failed.ok, false);
        assert.equal(str(failed.current), 'v2');
        assert.equal((await c.cas(`${k}-new`, null, 'fresh')).ok, true);
        await c.batch([
          { op: 'put', key: `${k}-b1`, value: '1' },
          { op: 'put', key: `${k}-b2`, value: '2' },
          { op: 'delete', key: `${k}-new` },
        ]);
        assert.equal(str(await c.get(`${k}-b2`)), '2');
        assert.equal(await c.get(`${k}-new`), null);
        await c.delete(k);
        assert.equal(await c.get(k), null);
      } finally {
        c.close();
      }
    }
  });

  it('answers pipelined requests on one connection', async () => {
    const conn = new Connection(cluster.endpoints()[0]!);
    try {
      const puts = Array.from({ length: 500 }, (_, i) =>
        conn.request({ op: 'put', key: Buffer.from(`pipe-${i}`), value: Buffer.from(String(i)), clientId: 0n, seq: 0 }, 10_000),
      );
      const res = await Promise.all(puts);
      assert.ok(res.every((r) => r.kind === 'ok'));
      const gets = await Promise.all(
        Array.from({ length: 500 }, (_, i) => conn.request({ op: 'get', key: Buffer.from(`pipe-${i}`), consistency: 'linearizable' }, 10_000)),
      );
      gets.forEach((r, i) => assert.deepEqual(r.kind === 'value' && str(r.value), String(i)));
    } finally {
      conn.close();
    }
  });

  it('scans in key order, page by page', async () => {
    const c = cluster.client();
    try {
      const keys = Array.from({ length: 250 }, (_, i) => `scan/${String(i).padStart(4, '0')}`);
      await Promise.all(keys.map((k) => c.put(k, k.toUpperCase())));
      const seen: string[] = [];
      for await (const kv of c.scanAll('scan/', 'scan0', { pageSize: 64 })) {
        seen.push(dec.decode(kv.key));
        assert.equal(dec.decode(kv.value), dec.decode(kv.key).toUpperCase());
      }
      assert.deepEqual(seen, keys);
      const page = await c.scan('scan/0100', 'scan/0110', { limit: 5 });
      assert.deepEqual(
        page.items.map((kv) => dec.decode(kv.key)),
        ['scan/0100', 'scan/0101', 'scan/0102', 'scan/0103', 'scan/0104'],
      );
      assert.equal(str(page.more), 'scan/0105');
      // From the very start of the key space (the empty key) too.
      const first = await c.scan('', null, { limit: 3 });
      assert.equal(first.items.length, 3);
    } finally {
      c.close();
    }
  });

  it('CAS races between clients: every successful swap is counted exactly once', async () => {
    const clients = cluster.endpoints().map((ep) => new KvsClient({ endpoints: [ep] }));
    try {
      await clients[0]!.put('counter', '0');
      let wins = 0;
      await Promise.all(
        clients.map(async (c) => {
          for (let i = 0; i < 30; i++) {
            const cur = str(await c.get('counter'))!;
            const r = await c.cas('counter', cur, String(Number(cur) + 1));
            if (r.ok) wins++;
          }
        }),
      );
      assert.equal(str(await clients[0]!.get('counter')), String(wins));
      assert.ok(wins >= 30, `only ${wins} swaps succeeded`);
    } finally {
      for (const c of clients) c.close();
    }
  });

  it('linearizable reads on a follower see a write acknowledged by another replica; stale reads are served locally', async () => {
    const leader = await cluster.waitForLeader();
    const follower = cluster.ids.find((id) => id !== leader.replicaId)!;
    const writer = new KvsClient({ endpoints: [cluster.address(leader.replicaId)] });
    const reader = new KvsClient({ endpoints: [cluster.address(follower)] });
    try {
      for (let i = 0; i < 50; i++) {
        await writer.put('fresh', String(i));
        assert.equal(str(await reader.get('fresh')), String(i), 'a linearizable follower read missed an acknowledged write');
      }
      // A stale read answers from the follower's own state: it may lag, but it is some written value.
      const stale = str(await reader.get('fresh', { consistency: 'stale' }));
      assert.ok(stale !== null && Number(stale) <= 49);
    } finally {
      writer.close();
      reader.close();
    }
  });

  it('a stale read at the leader sees the write the leader just answered (answers leave before the apply commits)', async () => {
    const leader = await cluster.waitForLeader();
    const client = new KvsClient({ endpoints: [cluster.address(leader.replicaId)] });
    try {
      // Pipelined: many writes in flight, each followed at once by a stale read of its key.
      await Promise.all(
        Array.from({ length: 32 }, async (_, lane) => {
          for (let i = 0; i < 20; i++) {
            await client.put(`ryw-${lane}`, String(i));
            assert.equal(str(await client.get(`ryw-${lane}`, { consistency: 'stale' })), String(i), `lane ${lane}: stale read missed write ${i}`);
          }
        }),
      );
    } finally {
      client.close();
    }
  });

  it('a retried write (same clientId and seq, connection cut before the reply) applies once', async () => {
    const c = cluster.client();
    await c.put('once', '0');
    c.close();
    const leader = await cluster.waitForLeader();
    const frame = encodeRequest(7, { op: 'cas', key: Buffer.from('once'), expected: Buffer.from('0'), value: Buffer.from('1'), clientId: 0xfeedn, seq: 1 });
    // First attempt: write it and hang up at once, without reading the answer.
    await new Promise<void>((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port: Number(cluster.address(leader.replicaId).split(':')[1]) }, () => {
        s.write(frame, () => {
          s.destroy();
          resolve();
        });
      });
      s.on('error', reject); // unheard, a refused or reset connection was an uncaught exception
    });
    // The first attempt did apply (so a retry that ran again would now fail its swap).
    const probe = cluster.client();
    // Waited for, not given a second: on a loaded machine the commit can take longer.
    await waitFor('the first attempt applied', async () => str(await probe.get('once')) === '1').catch(() => undefined);
    assert.equal(str(await probe.get('once')), '1', 'the first attempt never applied');
    probe.close();
    // The retry, as a client would send it after a timeout: same clientId and seq.
    const retry = await rawRequest(cluster.address(leader.replicaId), frame);
    assert.equal(retry.kind, 'cas');
    assert.equal(retry.kind === 'cas' && retry.ok, true, 'the retry was applied again instead of answered from the session');
    const again = new KvsClient({ endpoints: cluster.endpoints() });
    try {
      assert.equal(str(await again.get('once')), '1');
      // A new seq is a new write: the same swap now fails.
      const next = await rawRequest(cluster.address(leader.replicaId), encodeRequest(8, { op: 'cas', key: Buffer.from('once'), expected: Buffer.from('0'), value: Buffer.from('1'), clientId: 0xfeedn, seq: 2 }));
      assert.equal(next.kind === 'cas' && next.ok, false);
    } finally {
      again.close();
    }
  });

  it('rejects oversized keys and values before proposing them', async () => {
    const c = cluster.client();
    try {
      // Bad keys are the client's error (BAD_REQUEST / TOO_LARGE), answered at once, never retried.
      // The empty key cannot be written, so it reads as absent (as on every door).
      assert.equal(await c.get(''), null);
      await assert.rejects(c.put('', 'v'), (e: Error & { code?: string }) => e.code === 'BAD_REQUEST');
      await assert.rejects(c.get('k'.repeat(5000)), (e: Error & { code?: string }) => e.code === 'TOO_LARGE');
      await assert.rejects(c.put('x'.repeat(5000), 'v'), /TOO_LARGE|key/);
      await assert.rejects(c.put('big', Buffer.alloc((1 << 20) + 1)), /TOO_LARGE|value/);
      await c.put('big', Buffer.alloc(1 << 20, 7));
      assert.equal((await c.get('big'))!.length, 1 << 20);
    } finally {
      c.close();
    }
  });

  it('answers every request of a client that shuts down its sending side, then closes', async () => {
    // Through a follower, so the write waits for a forward and a commit after the client's FIN.
    const leader = await cluster.waitForLeader();
    const follower = cluster.ids.find((id) => id !== leader.replicaId)!;
    const { answers, serverEnded } = await exchangeUntilClosed(cluster.address(follower), [
      encodeRequest(1, { op: 'ping' }),
      encodeRequest(2, { op: 'put', key: Buffer.from('half-closed'), value: Buffer.from('v'), clientId: 0n, seq: 0 }),
      encodeRequest(3, { op: 'get', key: Buffer.from('half-closed'), consistency: 'linearizable' }),
    ], true);
    assert.deepEqual(
      answers.map((a) => [a.id, a.res.kind]).sort((a, b) => Number(a[0]) - Number(b[0])),
      [
        [1, 'ok'],
        [2, 'ok'],
        [3, 'value'],
      ],
    );
    assert.equal(serverEnded, true, 'the server closed its side once everything was answered');
  });

  it('answers a malformed HELLO with ERROR BAD_REQUEST and closes the connection (protocol.md §6.1)', async () => {
    const u16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff]);
    const u32 = (n: number): Buffer => Buffer.from([n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
    const magic = u32(0x4b565352);
    const bodies: [string, Buffer][] = [
      ['bad magic', Buffer.alloc(14)],
      ['replica id 0', Buffer.concat([magic, u16(2), u32(0), u32(0)])],
      ['version 0', Buffer.concat([magic, u16(0), u32(9), u32(0)])],
      ['trailing byte', Buffer.concat([magic, u16(2), u32(9), u32(0), Buffer.from([0])])],
      ['truncated', Buffer.concat([magic, u16(2)])],
    ];
    for (const [what, body] of bodies) {
      // A PING after it must not be answered: the connection is no client's once it said HELLO.
      const { answers, serverEnded } = await exchangeUntilClosed(cluster.endpoints()[0]!, [encodeFrame(FrameType.Hello, 0, body), encodeRequest(5, { op: 'ping' })], false);
      assert.deepEqual(
        answers.map((a) => [a.id, a.res.kind === 'error' && a.res.error.code]),
        [[0, 'BAD_REQUEST']],
        what,
      );
      assert.match(answers[0]!.res.kind === 'error' ? answers[0]!.res.error.message : '', /^hello: /, what);
      assert.equal(serverEnded, true, `${what}: the server closes`);
    }
  });

  it('survives bad input: unknown ops, malformed bodies, huge length prefixes, connection floods', async () => {
    const ep = cluster.endpoints()[1]!;
    // Unknown op and malformed body: a BAD_REQUEST answer, and the connection keeps working.
    const replies = await rawExchange(ep, [encodeFrame(0x3e, 1, Buffer.alloc(3)), encodeFrame(FrameType.Get, 2, Buffer.from([9, 9])), encodeRequest(3, { op: 'ping' })], 3);
    assert.deepEqual(
      replies.map((r) => (r.kind === 'error' ? r.error.code : r.kind)),
      ['BAD_REQUEST', 'BAD_REQUEST', 'ok'],
    );
    // A 4 GB length prefix: an error frame, then the server closes the connection.
    const huge = Buffer.from([0xff, 0xff, 0xff, 0xf0, 1, 0, 0, 0, 1]);
    const r = await rawExchange(ep, [huge], 1);
    assert.equal(r[0]!.kind === 'error' && r[0]!.error.code, 'BAD_REQUEST');
    // Truncated frames and garbage from many connections at once.
    const sockets = await Promise.all(
      Array.from({ length: 200 }, () => new Promise<net.Socket>((res) => {
        const s = net.connect({ host: '127.0.0.1', port: Number(ep.split(':')[1]) }, () => res(s));
        s.on('error', () => {});
      })),
    );
    for (const [i, s] of sockets.entries()) s.write(i % 2 ? Buffer.from([0, 0, 1]) : Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    const c = new KvsClient({ endpoints: [ep] });
    try {
      await c.put('still', 'serving');
      assert.equal(str(await c.get('still')), 'serving');
    } finally {
      c.close();
      for (const s of sockets) s.destroy();
    }
  });
});

/** Sends frames on a fresh connection (then shuts down its sending side if `halfClose`); what came back by the time the server closed. */
function exchangeUntilClosed(address: string, frames: Buffer[], halfClose: boolean): Promise<{ answers: { id: number; res: Response }[]; serverEnded: boolean }> {
  return new Promise((resolve, reject) => {
    const answers: { id: number; res: Response }[] = [];
    let serverEnded = false;
    const dec = new FrameDecoder();
    const s = net.connect({ host: '127.0.0.1', port: Number(address.split(':')[1]) }, () => (halfClose ? s.end(Buffer.concat(frames)) : s.write(Buffer.concat(frames))));
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`the server did not close; ${answers.length} answers`));
    }, 10_000);
    s.on('data', (b: Buffer) => {
      dec.push(b);
      for (let f = dec.read(); f; f = dec.read()) answers.push({ id: f.requestId, res: decodeResponse(f.type, f.body) });
    });
    s.on('end', () => (serverEnded = true));
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ answers, serverEnded });
    });
    s.on('error', reject);
  });
}

async function rawRequest(address: string, frame: Buffer): Promise<Response> {
  return (await rawExchange(address, [frame], 1))[0]!;
}

/** Sends frames on a fresh connection and collects `count` responses. */
function rawExchange(address: string, frames: Buffer[], count: number): Promise<Response[]> {
  return new Promise((resolve, reject) => {
    const out: Response[] = [];
    const dec = new FrameDecoder();
    const s = net.connect({ host: '127.0.0.1', port: Number(address.split(':')[1]) }, () => {
      for (const f of frames) s.write(f);
    });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`only ${out.length} of ${count} answers`));
    }, 5000);
    s.on('data', (b: Buffer) => {
      dec.push(b);
      for (let f = dec.read(); f; f = dec.read()) out.push(decodeResponse(f.type, f.body));
      if (out.length >= count) {
        clearTimeout(timer);
        s.destroy();
        resolve(out);
      }
    });
    s.on('error', reject);
  });
}
