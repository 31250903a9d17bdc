// Requests that can never succeed, sent to a real sharded cluster (2 shard groups of one replica) as
// raw frames, past the clients' own checks: each is answered at once with a non-retryable error and
// changes nothing. Ports 28700–28729.
// (A scan bound over the limit used to fail inside LMDB and come back UNAVAILABLE.)
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Connection } from '../../src/cluster/connection.ts';
import { KvsClient } from '../../src/client/client.ts';
import type { Request, Response } from '../../src/wire/index.ts';
import { ShardedCluster } from './cluster.ts';

describe('requests over the limits on a sharded cluster', () => {
  const c = new ShardedCluster(28700, 1);
  let client: KvsClient;
  let conn: Connection;
  before(async () => {
    await c.start(2, 64);
    client = c.client();
    conn = new Connection(c.endpoints()[0]!);
  });
  after(async () => {
    client?.close();
    conn?.close();
    await c.stop();
  });

  const send = (req: Request): Promise<Response> => conn.request(req, 10_000);
  /** The replicas' request deadline (`--request-timeout-ms`, default): a request retried runs to it. */
  const SERVER_DEADLINE_MS = 5000;
  const code = (r: Response): string => (r.kind === 'error' ? r.error.code : r.kind);

  it('a batch with one key or value over the limits is refused whole: none of its other puts apply', async () => {
    const run = Date.now();
    const keys = Array.from({ length: 8 }, (_, i) => Buffer.from(`limits:${run}:${i}`));
    const valid = keys.map((key) => ({ op: 'put' as const, key, value: Buffer.from('v') }));
    const bad = [
      { op: 'put' as const, key: Buffer.alloc(5000, 'k'), value: Buffer.from('v') },
      { op: 'put' as const, key: Buffer.from(`limits:${run}:big`), value: Buffer.alloc(1024 * 1024 + 1) },
    ];
    for (const op of bad) {
      const res = await send({ op: 'batch', clientId: 0n, seq: 0, ops: [...valid, op] });
      assert.equal(code(res), 'TOO_LARGE');
    }
    for (const key of keys) assert.equal(await client.get(key), null, `${key} was not written`);
  });

  it('a scan bound longer than a key is answered TOO_LARGE at once (it was UNAVAILABLE, retried until the deadline)', async () => {
    const long = (n: number, c: string): Buffer => Buffer.alloc(n, c);
    const cases: [Uint8Array, Uint8Array | null][] = [
      [long(4027, 'k'), null],
      [long(5000, 'k'), null],
      [long(65_535, 'k'), long(1, 'l')],
      [long(1, 'a'), long(4027, 'k')],
    ];
    for (const [start, end] of cases) {
      for (const consistency of ['linearizable', 'stale'] as const) {
        const t0 = Date.now();
        const res = await send({ op: 'scan', start, end, limit: 1, consistency });
        assert.equal(code(res), 'TOO_LARGE', `start ${start.length}, end ${end?.length}: ${JSON.stringify(res)}`);
        // At once: before the replicas' deadline, where a retried request is answered. Not a
        // tighter bound: a loaded machine can take a second or two to answer anything.
        assert.ok(Date.now() - t0 < SERVER_DEADLINE_MS, `answered in ${Date.now() - t0} ms`);
      }
    }
    await client.scan('', null, { limit: 1 }); // the replicas still serve scans
  });
});
