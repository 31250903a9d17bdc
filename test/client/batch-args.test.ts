// batch() from plain JavaScript: an op other than exactly 'put' (with a value) or 'delete' used to
// be sent as a delete, so batch([{ op: 'set', key, value }]) or { op: 'PUT', ... } deleted the key.
// Both clients now refuse such a batch whole with KvsError BAD_REQUEST before anything is sent, and
// an empty batch resolves without sending anything (it was a RangeError).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KvsClient, KvsError } from '../../src/client/index.ts';
import { clientsOnFakeReplica } from './fake-replica.ts';

describe('batch arguments', () => {
  const fake = clientsOnFakeReplica();
  const clients = fake.clients;

  const bad: [string, unknown[]][] = [
    ["op 'set'", [{ op: 'set', key: 'k', value: 'v' }]],
    ["op 'PUT'", [{ op: 'PUT', key: 'k', value: 'v' }]],
    ['no op', [{ key: 'k', value: 'v' }]],
    ['a put without a value', [{ op: 'put', key: 'k' }]],
    ['a put with a null value', [{ op: 'put', key: 'k', value: null }]],
    ['valid ops, then a bad one', [{ op: 'put', key: 'a', value: '1' }, { op: 'delete', key: 'b' }, { op: 'remove', key: 'c' }]],
    ['an op that is not an object', [{ op: 'put', key: 'a', value: '1' }, 'delete c']],
  ];
  for (const [what, ops] of bad) {
    it(`refuses ${what} with BAD_REQUEST and sends nothing`, async () => {
      for (const c of clients) {
        const before = fake.replica.seen.length;
        await assert.rejects(
          c.batch(ops as Parameters<KvsClient['batch']>[0]),
          (e: unknown) => e instanceof KvsError && e.code === 'BAD_REQUEST',
          c.constructor.name,
        );
        assert.equal(fake.replica.seen.length, before, `${c.constructor.name} sent nothing`);
      }
    });
  }

  it('an empty batch resolves and sends nothing', async () => {
    for (const c of clients) {
      const before = fake.replica.seen.length;
      await c.batch([]);
      assert.equal(fake.replica.seen.length, before, c.constructor.name);
    }
  });

  it("sends a batch of 'put' and 'delete' ops as they are", async () => {
    for (const c of clients) {
      const before = fake.replica.seen.length;
      await c.batch([{ op: 'put', key: 'a', value: '1' }, { op: 'delete', key: 'b' }]);
      const ops = fake.replica.seen.slice(before).flatMap((r) => (r.op === 'batch' ? r.ops : []));
      assert.deepEqual(ops.map((o) => o.op).sort(), ['delete', 'put'], c.constructor.name);
    }
  });
});
