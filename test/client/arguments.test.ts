// Arguments of the wrong kind from plain JavaScript. put(123, 'v') or an ArrayBuffer value threw
// Node internals ('The value of "size" is out of range ... Received NaN'), new KvsClient({}) a
// TypeError from inside the library, a Uint16Array value was stored as its element values cut to
// bytes, and an unknown consistency was read as linearizable. Now: strings and Uint8Arrays (Buffers)
// are taken as they are, any other ArrayBufferView by its bytes, anything else is a TypeError naming
// the argument; an unknown consistency or a bad scan limit is KvsError BAD_REQUEST; nothing is sent.
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { KvsClient, KvsError, ShardedClient, type Bytes } from '../../src/client/index.ts';
import type { Request } from '../../src/wire/index.ts';
import { clientsOnFakeReplica } from './fake-replica.ts';

const typeError = (name: RegExp) => (e: unknown) => e instanceof TypeError && name.test(e.message);
const badRequest = (e: unknown): boolean => e instanceof KvsError && e.code === 'BAD_REQUEST';

describe('client arguments', () => {
  const fake = clientsOnFakeReplica();
  const clients = fake.clients;

  /** Calls f on both clients: it must be refused as `check` says, with nothing sent. */
  async function refused(f: (c: KvsClient) => Promise<unknown>, check: (e: unknown) => boolean): Promise<void> {
    for (const c of clients) {
      const before = fake.replica.seen.length;
      await assert.rejects(f(c), check, c.constructor.name);
      assert.equal(fake.replica.seen.length, before, `${c.constructor.name} sent nothing`);
    }
  }
  const any = (v: unknown): Bytes => v as Bytes;

  it('a key or value that is neither a string nor bytes is a TypeError naming it', async () => {
    for (const bad of [123, undefined, null, { a: 1 }, new ArrayBuffer(4), true, Symbol('s'), [1, 2]]) {
      if (bad !== null) await refused((c) => c.put(any(bad), 'v'), typeError(/^key must be a string or a Uint8Array/));
      await refused((c) => c.put('k', any(bad)), typeError(/^value must be a string or a Uint8Array/));
      if (bad !== null) {
        await refused((c) => c.get(any(bad)), typeError(/^key /));
        await refused((c) => c.delete(any(bad)), typeError(/^key /));
        await refused((c) => c.cas(any(bad), null, 'v'), typeError(/^key /));
        await refused((c) => c.cas('k', any(bad), 'v'), typeError(/^expected /));
        await refused((c) => c.cas('k', null, any(bad)), typeError(/^value /));
        await refused((c) => c.scan(any(bad), null), typeError(/^scan start /));
        await refused((c) => c.scan('a', any(bad)), typeError(/^scan end /));
        await refused((c) => c.batch([{ op: 'put', key: any(bad), value: 'v' }]), typeError(/^batch op 0: key /));
        await refused((c) => c.batch([{ op: 'put', key: 'k', value: any(bad) }]), bad === undefined ? badRequest : typeError(/^batch op 0: value /));
      }
    }
  });

  it('any ArrayBufferView is taken by its bytes; Buffers and Uint8Arrays as they are', async () => {
    const u16 = new Uint16Array([1, 0x0102]);
    const view = new DataView(new Uint8Array([9, 8, 7, 6]).buffer, 1, 2);
    const cases: [unknown, Uint8Array][] = [
      [u16, new Uint8Array(u16.buffer)],
      [view, new Uint8Array([8, 7])],
      [Buffer.from('buf'), new Uint8Array(Buffer.from('buf'))],
      [new Uint8Array([1, 2, 3]).subarray(1), new Uint8Array([2, 3])],
      ['é', new Uint8Array([0xc3, 0xa9])],
    ];
    for (const [value, bytes] of cases) {
      for (const c of clients) {
        const before = fake.replica.seen.length;
        await c.put(any(value), any(value));
        const sent = fake.replica.seen.slice(before).find((r) => r.op === 'put') as Extract<Request, { op: 'put' }>;
        assert.deepEqual(new Uint8Array(sent.key), bytes, `${c.constructor.name} key ${value?.constructor.name}`);
        assert.deepEqual(new Uint8Array(sent.value), bytes, `${c.constructor.name} value ${value?.constructor.name}`);
      }
    }
  });

  it('an unknown consistency is BAD_REQUEST, not a linearizable read', async () => {
    for (const consistency of ['bogus', 'STALE', 1, null]) {
      const opts = { consistency } as unknown as { consistency: 'stale' };
      await refused((c) => c.get('k', opts), badRequest);
      await refused((c) => c.scan('a', null, opts), badRequest);
      await refused((c) => c.count(opts), badRequest);
      await refused(async (c) => {
        for await (const kv of c.scanAll('a', null, opts)) void kv;
      }, badRequest);
    }
    for (const c of clients) {
      const before = fake.replica.seen.length;
      await c.get('k', { consistency: 'stale' });
      await c.get('k');
      assert.deepEqual(fake.replica.seen.slice(before).map((r) => (r.op === 'get' ? r.consistency : r.op)), ['stale', 'linearizable']);
    }
  });

  it('a scan limit must be a whole number of keys', async () => {
    for (const limit of [-1, 1.5, 2 ** 32, NaN]) {
      await refused((c) => c.scan('a', null, { limit }), badRequest);
      await refused(async (c) => {
        for await (const kv of c.scanAll('a', null, { pageSize: limit })) void kv;
      }, badRequest);
    }
    await refused((c) => c.scan('a', null, { limit: '10' as unknown as number }), typeError(/^limit must be a number/));
  });

  it('options without a list of addresses are a TypeError naming it', () => {
    const make = (o: unknown) => () => new KvsClient(o as { endpoints: string[] });
    assert.throws(make({}), typeError(/^endpoints must be an array of "host:port" strings, got undefined/));
    assert.throws(make({ endpoints: '127.0.0.1:7001' }), typeError(/^endpoints must be an array/));
    assert.throws(make({ endpoints: [7001] }), typeError(/^endpoints must be an array/));
    assert.throws(make(undefined), typeError(/^the client's options must be an object/));
    assert.throws(() => new ShardedClient({} as { placement: string[] }), typeError(/^placement must be an array/));
    assert.throws(() => new ShardedClient({ placement: ['a:1'], endpoints: 'b:2' } as unknown as { placement: string[] }), typeError(/^endpoints must be an array/));
  });
});

it('a refused argument does not wait for a write lane', async () => {
  // One lane, held by a write to a replica that accepts connections but never answers.
  const server = createServer((sock) => sock.on('error', () => {})); // resets are the client's doing
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const c = new KvsClient({ endpoints: [address], maxInFlightWrites: 1, timeoutMs: 1500 });
  try {
    // Whether the held write has ended, not how long the refusals took: on a loaded machine a
    // stall can outlast any bound, but never reorder a refusal after the held write's deadline.
    let heldEnded = false;
    const held = c.put('k', 'v').catch(() => undefined).finally(() => (heldEnded = true));
    await assert.rejects(c.put(123 as unknown as string, 'v'), TypeError);
    await assert.rejects(c.delete('k'.repeat(5000)), (e: unknown) => e instanceof KvsError && e.code === 'TOO_LARGE');
    await assert.rejects(c.cas('k', undefined as unknown as null, 'v'), TypeError);
    assert.equal(heldEnded, false, 'refused at once, not after the held write');
    await held;
  } finally {
    c.close();
    server.close();
  }
});
