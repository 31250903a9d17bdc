// The gRPC door of a real 3-replica group, driven by a client built from protos/kv.proto alone
// (as the original Go project's clients were generated from theirs): Put/Get/Delete through any
// replica, the new Scan/CompareAndSwap/Batch RPCs, status codes for errors, and malformed
// protobuf (hand-made and fuzzed) answered INVALID_ARGUMENT while the server keeps serving.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { KV_PROTO_PATH } from '../../src/doors/grpc-door.ts';
import { HEALTH_PROTO_PATH } from '../../src/doors/grpc-health.ts';
import { waitFor } from '../support/wait.ts';
import { DoorCluster } from './cluster.ts';
import { Prng } from './prng.ts';

type Callback<T> = (err: grpc.ServiceError | null, res?: T) => void;
interface KvClient extends grpc.Client {
  Get(req: { key: string }, cb: Callback<{ value: string }>): void;
  Put(req: { key: string; value: string }, cb: Callback<object>): void;
  Delete(req: { key: string }, cb: Callback<object>): void;
  Scan(req: { start?: Buffer; end?: Buffer; limit?: number; stale?: boolean }): grpc.ClientReadableStream<{ key: Buffer; value: Buffer }>;
  CompareAndSwap(req: { key: Buffer; expected?: Buffer; value?: Buffer }, cb: Callback<{ ok: boolean; current?: Buffer | null }>): void;
  Batch(req: { ops: ({ put: { key: Buffer; value: Buffer } } | { delete: Buffer })[] }, cb: Callback<object>): void;
}

/** What a client generator gets: the proto file and nothing else from this repository. */
function clientFor(address: string): KvClient {
  const def = protoLoader.loadSync(KV_PROTO_PATH, { keepCase: true, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { protos: { KV: new (addr: string, creds: grpc.ChannelCredentials) => KvClient } };
  return new pkg.protos.KV(address, grpc.credentials.createInsecure());
}

function unary<Req, Res>(client: KvClient, method: 'Get' | 'Put' | 'Delete' | 'CompareAndSwap' | 'Batch', req: Req): Promise<Res> {
  return new Promise((resolve, reject) => {
    (client[method] as (r: Req, cb: Callback<Res>) => void).call(client, req, (err, res) => (err ? reject(err) : resolve(res!)));
  });
}

async function status(p: Promise<unknown>): Promise<{ code: grpc.status; details: string; metadata: grpc.Metadata }> {
  try {
    await p;
  } catch (e) {
    const err = e as grpc.ServiceError;
    return { code: err.code, details: err.details, metadata: err.metadata };
  }
  return { code: grpc.status.OK, details: '', metadata: new grpc.Metadata() };
}

/** A unary call with raw request bytes: how a broken client (or an attacker) would send them. */
function rawCall(client: grpc.Client, method: string, bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      `/protos.KV/${method}`,
      (b: Buffer) => b,
      (b: Buffer) => b,
      bytes,
      (err: grpc.ServiceError | null, res?: Buffer) => (err ? reject(err) : resolve(res!)),
    );
  });
}

function scan(client: KvClient, req: Parameters<KvClient['Scan']>[0]): Promise<[string, string][]> {
  return new Promise((resolve, reject) => {
    const out: [string, string][] = [];
    const s = client.Scan(req);
    s.on('data', (kv: { key: Buffer; value: Buffer }) => out.push([kv.key.toString(), kv.value.toString()]));
    s.on('error', reject);
    s.on('end', () => resolve(out));
  });
}

describe('gRPC door against a 3-replica group', { timeout: 180_000 }, () => {
  let cluster: DoorCluster;
  const clients = new Map<number, KvClient>();
  const client = (id: number): KvClient => clients.get(id)!;

  before(async () => {
    cluster = await DoorCluster.start(21100);
    for (const id of cluster.ids) clients.set(id, clientFor(cluster.address(id, 'grpc')));
  });
  after(async () => {
    for (const c of clients.values()) c.close();
    await cluster?.stop();
  });

  it('grpc.health.v1 Check says SERVING on every replica of the live group (the /readyz truth)', async () => {
    const def = protoLoader.loadSync(HEALTH_PROTO_PATH, { keepCase: true, enums: String, defaults: true });
    const Health = (grpc.loadPackageDefinition(def) as unknown as { grpc: { health: { v1: { Health: new (a: string, c: grpc.ChannelCredentials) => grpc.Client } } } }).grpc.health.v1.Health;
    for (const id of cluster.ids) {
      const h = new Health(cluster.address(id, 'grpc'), grpc.credentials.createInsecure()) as grpc.Client & { Check(r: object, cb: Callback<{ status: string }>): void };
      try {
        const status = await waitFor(`replica ${id} SERVING`, () => new Promise<string | undefined>((res) => h.Check({ service: '' }, (e, r) => res(r?.status === 'SERVING' ? r.status : undefined))));
        assert.equal(status, 'SERVING');
      } finally {
        h.close();
      }
    }
  });

  it('Put, Get and Delete through any replica (the original service)', async () => {
    for (const writer of cluster.ids) {
      const key = `grpc:${writer}`;
      await unary(client(writer), 'Put', { key, value: `from ${writer} ✓` });
      for (const reader of cluster.ids) assert.deepEqual(await unary(client(reader), 'Get', { key }), { value: `from ${writer} ✓` });
      await unary(client((writer % 3) + 1), 'Delete', { key });
      for (const reader of cluster.ids) {
        const st = await status(unary(client(reader), 'Get', { key }));
        assert.equal(st.code, grpc.status.NOT_FOUND);
      }
    }
    await unary(client(2), 'Delete', { key: 'never-existed' }); // deleting a missing key succeeds
  });

  it('Batch, then Scan streams pairs in key order, bounded and limited', async () => {
    const ops = Array.from({ length: 30 }, (_, i) => ({ put: { key: Buffer.from(`scan:${String(i).padStart(2, '0')}`), value: Buffer.from(String(i)) } }));
    await unary(client(1), 'Batch', { ops: [...ops, { delete: Buffer.from('scan:00') }] });
    const all = await scan(client(2), { start: Buffer.from('scan:'), end: Buffer.from('scan;') });
    assert.equal(all.length, 29);
    assert.deepEqual(all[0], ['scan:01', '1']);
    assert.deepEqual(all.at(-1), ['scan:29', '29']);
    assert.equal((await scan(client(3), { start: Buffer.from('scan:10'), end: Buffer.from('scan;'), limit: 5 })).length, 5);
    assert.deepEqual((await scan(client(3), { start: Buffer.from('scan:28'), stale: false })).map(([k]) => k).slice(0, 2), ['scan:28', 'scan:29']);
    const bad = await status(unary(client(1), 'Batch', { ops: [{} as never] }));
    assert.equal(bad.code, grpc.status.INVALID_ARGUMENT);
  });

  it('CompareAndSwap creates, compares and deletes, on binary keys and values', async () => {
    const key = Buffer.from([0x00, 0xff, 0x10]);
    const made = await unary<object, { ok: boolean; current?: Buffer }>(client(1), 'CompareAndSwap', { key, value: Buffer.from([1, 2]) });
    assert.equal(made.ok, true);
    assert.deepEqual(made.current, Buffer.from([1, 2]));
    const miss = await unary<object, { ok: boolean; current?: Buffer }>(client(2), 'CompareAndSwap', { key, expected: Buffer.from([9]), value: Buffer.from([3]) });
    assert.equal(miss.ok, false);
    assert.deepEqual(miss.current, Buffer.from([1, 2]));
    const del = await unary<object, { ok: boolean; current?: Buffer | null }>(client(3), 'CompareAndSwap', { key, expected: Buffer.from([1, 2]) });
    assert.equal(del.ok, true);
    assert.equal(del.current ?? null, null);
  });

  it('maps errors onto status codes, with the server error code in metadata', async () => {
    const big = await status(unary(client(1), 'Put', { key: 'big', value: 'x'.repeat((1 << 20) + 1) }));
    assert.equal(big.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.equal(big.metadata.get('kvs-error')[0], 'TOO_LARGE');
    const empty = await status(unary(client(2), 'Put', { key: '', value: 'v' }));
    assert.equal(empty.code, grpc.status.INVALID_ARGUMENT);
    await unary(client(1), 'CompareAndSwap', { key: Buffer.from('binary'), value: Buffer.from([0xff, 0xfe]) });
    const notText = await status(unary(client(3), 'Get', { key: 'binary' }));
    assert.equal(notText.code, grpc.status.FAILED_PRECONDITION);
    assert.match(notText.details, /not valid UTF-8/);
  });

  it('answers malformed protobuf with INVALID_ARGUMENT and a reason', async () => {
    const cases: [string, number[], RegExp][] = [
      ['Get', [0x0a, 0xff, 0xff, 0xff, 0x0f], /runs past the end/],
      ['Get', [0x0a, 0x02, 0xff, 0xfe], /not valid UTF-8/],
      ['Put', [0x0d, 1, 2, 3, 4], /wire type 5/],
      ['Batch', [0x0a, 0x04, 0x0a, 0x02, 0x0a, 0x05], /ops\.put\.key/],
      ['Scan', [0x1b], /wire type 3/],
    ];
    for (const [method, bytes, reason] of cases) {
      const st = await status(rawCall(client(1), method, Buffer.from(bytes)));
      assert.equal(st.code, grpc.status.INVALID_ARGUMENT, `${method} ${Buffer.from(bytes).toString('hex')}`);
      assert.match(st.details, reason);
      assert.equal(st.metadata.get('kvs-error')[0], 'BAD_REQUEST', 'our code, as every error of ours carries');
    }
  });

  it('under fuzzed request bytes answers with a definite status, never an internal error, and keeps serving', async () => {
    const rng = new Prng(5);
    const methods = ['Get', 'Put', 'Delete', 'CompareAndSwap', 'Batch'];
    const valid = new Map<string, Buffer>([
      ['Get', Buffer.from([0x0a, 0x03, 0x66, 0x7a, 0x7a])],
      ['Put', Buffer.from([0x0a, 0x03, 0x66, 0x7a, 0x7a, 0x12, 0x01, 0x76])],
      ['Delete', Buffer.from([0x0a, 0x03, 0x66, 0x7a, 0x7a])],
      ['CompareAndSwap', Buffer.from([0x0a, 0x02, 0x66, 0x7a, 0x1a, 0x01, 0x76])],
      ['Batch', Buffer.from([0x0a, 0x0a, 0x0a, 0x08, 0x0a, 0x03, 0x66, 0x7a, 0x7a, 0x12, 0x01, 0x76])],
    ]);
    const allowed = new Set([grpc.status.OK, grpc.status.NOT_FOUND, grpc.status.INVALID_ARGUMENT, grpc.status.FAILED_PRECONDITION, grpc.status.RESOURCE_EXHAUSTED]);
    for (let i = 0; i < 300; i++) {
      const method = rng.pick(methods);
      let bytes: Buffer = Buffer.from(valid.get(method)!);
      if (rng.int(4) === 0) bytes = rng.bytes(rng.int(24));
      else for (let k = 0; k < 1 + rng.int(3); k++) bytes[rng.int(bytes.length)] = rng.int(256);
      const st = await status(rawCall(client(1 + (i % 3)), method, bytes));
      assert.ok(allowed.has(st.code), `${method} ${bytes.toString('hex')}: ${grpc.status[st.code]} ${st.details}`);
    }
    await unary(client(1), 'Put', { key: 'after-fuzz', value: 'ok' });
    assert.deepEqual(await unary(client(3), 'Get', { key: 'after-fuzz' }), { value: 'ok' });
  });

  // A Scan with a 55 s deadline failed UNAVAILABLE during an election: the router waits out an
  // election only up to its request timeout (5 s), and a replica without a leader for 1.5 s answers
  // NOT_LEADER at once (for clients to try another replica), which gRPC clients do not do. The
  // door now retries what did not apply until the call's deadline.
  it('Get, Put and Scan started while the replica has no leader succeed once one is elected, within their deadline', async () => {
    const leader = await cluster.waitForLeader();
    const asked = cluster.ids.find((id) => id !== leader.replicaId)!;
    const stopped = cluster.ids.filter((id) => id !== asked);
    await unary(client(asked), 'Put', { key: 'election:a', value: 'before' });
    for (const id of stopped) cluster.signal(id, 'SIGSTOP');
    try {
      // No leader known, for longer than the 1.5 s after which the router stops waiting for one.
      await waitFor('no leader known', async () => ((await cluster.status(asked))?.leaderId === 0 ? true : undefined), 10_000);
      await new Promise((r) => setTimeout(r, 2500));
      const started = Date.now();
      const deadline = started + 40_000;
      const get = new Promise<{ value: string }>((resolve, reject) =>
        (client(asked) as unknown as { Get(r: object, md: grpc.Metadata, o: grpc.CallOptions, cb: Callback<{ value: string }>): void }).Get({ key: 'election:a' }, new grpc.Metadata(), { deadline }, (e, r) => (e ? reject(e) : resolve(r!))),
      );
      const put = new Promise<object>((resolve, reject) =>
        (client(asked) as unknown as { Put(r: object, md: grpc.Metadata, o: grpc.CallOptions, cb: Callback<object>): void }).Put({ key: 'election:b', value: 'during' }, new grpc.Metadata(), { deadline }, (e, r) => (e ? reject(e) : resolve(r!))),
      );
      const scanned = new Promise<string[]>((resolve, reject) => {
        const keys: string[] = [];
        const s = (client(asked) as unknown as { Scan(r: object, md: grpc.Metadata, o: grpc.CallOptions): grpc.ClientReadableStream<{ key: Buffer }> }).Scan({ start: Buffer.from('election:'), end: Buffer.from('election;') }, new grpc.Metadata(), { deadline });
        s.on('data', (kv: { key: Buffer }) => keys.push(kv.key.toString()));
        s.on('error', reject);
        s.on('end', () => resolve(keys));
      });
      const settled = Promise.allSettled([get, put, scanned]);
      // Nothing may fail while there is no leader; then let the group elect one.
      const early = await Promise.race([settled, new Promise<undefined>((r) => setTimeout(() => r(undefined), 3000))]);
      assert.equal(early, undefined, `answered while no leader was known: ${JSON.stringify(early)}`);
      for (const id of stopped) cluster.signal(id, 'SIGCONT');
      const [g, p, sc] = await settled;
      assert.deepEqual(g.status === 'fulfilled' ? g.value : String(g.reason), { value: 'before' });
      assert.equal(p.status, 'fulfilled', p.status === 'rejected' ? String(p.reason) : '');
      assert.ok(sc.status === 'fulfilled' && sc.value.includes('election:a'), sc.status === 'rejected' ? String(sc.reason) : JSON.stringify(sc.value));
      assert.ok(Date.now() < deadline, 'within the deadline');
      assert.deepEqual(await unary(client(asked), 'Get', { key: 'election:b' }), { value: 'during' });
    } finally {
      for (const id of stopped) cluster.signal(id, 'SIGCONT');
    }
  });
});
