// timeoutMs bounds the whole call, the wait for a write slot (maxInFlightWrites) included, and options
// a client cannot work with are refused when it is built. Before: with maxInFlightWrites 1 the n-th of
// n concurrent writes to a silent replica failed after about n × timeoutMs, and maxInFlightWrites 0
// made every write wait forever.
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { KvsClient, KvsError } from '../../src/client/client.ts';
import { ShardedClient } from '../../src/client/sharded-client.ts';

describe('client options and deadlines', () => {
  // A replica that accepts connections and answers nothing.
  let server: Server;
  let address = '';
  const sockets = new Set<Socket>();
  before(async () => {
    server = createServer((sock) => {
      sockets.add(sock);
      sock.on('close', () => sockets.delete(sock));
      sock.on('error', () => {});
      sock.resume();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });

  it('a write waiting for a slot is bounded by its own timeoutMs', async () => {
    const timeoutMs = 500;
    const n = 40; // one after another they would take n × timeoutMs = 20 s
    const kv = new KvsClient({ endpoints: [address], timeoutMs, maxInFlightWrites: 1 });
    try {
      const t = Date.now();
      const results = await Promise.allSettled(Array.from({ length: n }, (_, i) => kv.put(`k${i}`, 'v')));
      const elapsed = Date.now() - t;
      // Half of what one after another would take: about one timeoutMs is expected, and the margin
      // is for a loaded machine, not a tolerance on the bound (each queued write's message below
      // says it gave up at its own 500 ms).
      assert.ok(elapsed < (n / 2) * timeoutMs, `all ${n} writes settled long before n × timeoutMs (took ${elapsed} ms)`);
      for (const r of results) assert.ok(r.status === 'rejected' && r.reason instanceof KvsError);
      const queued = results.slice(1).map((r) => (r.status === 'rejected' ? (r.reason as KvsError) : undefined));
      // A queued write is handed the slot when the write before it gives up at its deadline, a few
      // ms before its own (its call began those ms later; more on a loaded machine): then its own
      // attempt runs out of time (UNREACHABLE or TIMEOUT). One handed nothing says why.
      const slotless = queued.filter((e) => e?.code === 'UNAVAILABLE');
      for (const e of slotless) assert.match(e!.message, /no write slot freed within 500 ms .*was not sent/);
      for (const e of queued) assert.ok(['UNAVAILABLE', 'UNREACHABLE', 'TIMEOUT'].includes(e!.code), `${e!.code}: ${e!.message}`);
      assert.ok(slotless.length > 0, queued.map((e) => e!.code).join(' '));
    } finally {
      kv.close();
    }
  });

  it('refuses options it cannot work with when built', () => {
    for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(() => new KvsClient({ endpoints: [address], maxInFlightWrites: bad }), (e: unknown) => e instanceof RangeError && /maxInFlightWrites must be an integer > 0/.test(e.message));
      assert.throws(() => new KvsClient({ endpoints: [address], poolSize: bad }), (e: unknown) => e instanceof RangeError && /poolSize/.test(e.message));
    }
    for (const bad of [0, -5, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(() => new KvsClient({ endpoints: [address], timeoutMs: bad }), (e: unknown) => e instanceof RangeError && /timeoutMs must be a finite number > 0/.test(e.message));
      assert.throws(() => new KvsClient({ endpoints: [address], attemptTimeoutMs: bad }), (e: unknown) => e instanceof RangeError && /attemptTimeoutMs/.test(e.message));
      assert.throws(() => new ShardedClient({ placement: [address], timeoutMs: bad }), RangeError);
    }
    assert.throws(() => new ShardedClient({ placement: [address], maxInFlightWrites: 0 }), RangeError);
    assert.throws(() => new ShardedClient({ placement: [address], pollMs: -1 }), /pollMs must be a finite number >= 0/);
    assert.throws(() => new ShardedClient({ placement: [address], configWaitMs: Number.NaN }), /configWaitMs/);
    assert.throws(() => new ShardedClient({ placement: [address], maxPollMs: 0 }), /maxPollMs/);
    // Past what a timer holds (2^31 - 1 ms) every attempt would fire at once (found in review).
    for (const big of [2 ** 31, Number.MAX_SAFE_INTEGER]) {
      assert.throws(() => new KvsClient({ endpoints: [address], timeoutMs: big }), (e: unknown) => e instanceof RangeError && /at most 2147483647/.test(e.message));
      assert.throws(() => new KvsClient({ endpoints: [address], attemptTimeoutMs: big }), RangeError);
    }
    new KvsClient({ endpoints: [address], timeoutMs: 2 ** 31 - 1 }).close();
    // What works stays accepted.
    new KvsClient({ endpoints: [address], timeoutMs: 1, maxInFlightWrites: 1, poolSize: 1, attemptTimeoutMs: 0.5 }).close();
    new ShardedClient({ placement: [address], pollMs: 0, configWaitMs: 0 }).close();
  });
});
