// Keys longer than 65,535 bytes made every operation throw a plain RangeError from the frame encoder
// ("field of 65536 bytes exceeds u16 length"), where the docs promise KvsError TOO_LARGE. Both
// clients now refuse a key, or a scan bound, longer than any server stores (4026 bytes) with
// TOO_LARGE before encoding anything, as a server answers keys between 4027 and 65,535 bytes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KvsClient, KvsError } from '../../src/client/index.ts';
import { clientsOnFakeReplica } from './fake-replica.ts';

describe('keys over the limit', () => {
  const fake = clientsOnFakeReplica();
  const clients = fake.clients;

  const ops = (c: KvsClient, key: string | Uint8Array): [string, () => Promise<unknown>][] => [
    ['get', () => c.get(key)],
    ['put', () => c.put(key, 'v')],
    ['delete', () => c.delete(key)],
    ['cas', () => c.cas(key, null, 'v')],
    ['batch', () => c.batch([{ op: 'put', key, value: 'v' }])],
    ['scan start', () => c.scan(key, null, { limit: 1 })],
    ['scan end', () => c.scan('a', key, { limit: 1 })],
    ['scanAll', async () => {
      for await (const kv of c.scanAll(key, null)) void kv;
    }],
  ];

  for (const len of [4027, 65_535, 65_536, 100_000]) {
    it(`${len} bytes: KvsError TOO_LARGE on every operation, nothing sent`, async () => {
      for (const c of clients) {
        for (const key of ['k'.repeat(len), new Uint8Array(len)]) {
          for (const [op, f] of ops(c, key)) {
            const before = fake.replica.seen.length;
            await assert.rejects(f(), (e: unknown) => e instanceof KvsError && e.code === 'TOO_LARGE' && new RegExp(`of ${len} bytes exceeds the limit of 4026`).test(e.message), `${c.constructor.name} ${op}`);
            assert.equal(fake.replica.seen.length, before, `${c.constructor.name} ${op} sent nothing`);
          }
        }
      }
    });
  }

  it('4026 bytes: sent', async () => {
    for (const c of clients) for (const [, f] of ops(c, 'k'.repeat(4026))) await f();
  });
});
