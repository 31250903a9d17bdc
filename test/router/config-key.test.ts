// The configuration key is guarded: a placement replica accepts only a compare-and-swap to a whole,
// consistent configuration with a higher epoch, and a shard replica refuses the key outright.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadXxh64 } from '../../src/partition/index.ts';
import { CONFIG_KEY, completeMoves, configChangeProblem, encodeConfig, initialConfig, reshard, withReplica, type ClusterConfig } from '../../src/placement/config.ts';
import { configKeyElsewhere, configWriteRefusal } from '../../src/router/placement-front.ts';
import type { Request } from '../../src/wire/index.ts';

const key = Buffer.from(CONFIG_KEY);
const session = { clientId: 0n, seq: 0 };
const group = (id: number) => ({ id, replicas: [{ id: id * 10 + 1, address: `127.0.0.1:${7000 + id}` }] });
const cas = (expected: ClusterConfig | null, value: unknown): Request => ({
  op: 'cas',
  ...session,
  key,
  expected: expected && encodeConfig(expected),
  value: Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)),
});
const codeOf = (r: ReturnType<typeof configWriteRefusal>) => (r?.kind === 'error' ? r.error.code : undefined);

describe('the configuration key', async () => {
  const h64 = await loadXxh64();
  const first = initialConfig(h64, [group(1), group(2)], 64);

  it('accepts every change the tools make: the first configuration, a reshard, completed moves, a membership change', () => {
    const resharded = reshard(h64, first, [group(1), group(2), group(3)]);
    const done = completeMoves(resharded, resharded.moves.map((m) => m.partition));
    const grown = withReplica(done, 2, { id: 22, address: '127.0.0.1:7102' });
    assert.equal(configWriteRefusal(cas(null, first)), undefined);
    for (const [prev, next] of [[first, resharded], [resharded, done], [done, grown]] as const) {
      assert.equal(configWriteRefusal(cas(prev, next)), undefined, `epoch ${prev.epoch} -> ${next.epoch}`);
    }
    assert.equal(configWriteRefusal({ op: 'get', key, consistency: 'linearizable' }), undefined, 'reads are served');
  });

  it('refuses plain writes, deletes, batches naming it and CAS deletes', () => {
    const refused: Request[] = [
      { op: 'put', ...session, key, value: encodeConfig({ ...first, epoch: 9 }) },
      { op: 'delete', ...session, key },
      { op: 'batch', ...session, ops: [{ op: 'put', key: Buffer.from('a'), value: Buffer.from('1') }, { op: 'delete', key }] },
      { op: 'cas', ...session, key, expected: encodeConfig(first), value: null },
    ];
    for (const r of refused) assert.equal(codeOf(configWriteRefusal(r)), 'BAD_REQUEST', r.op);
    const other: Request = { op: 'put', ...session, key: Buffer.from('placement/config2'), value: Buffer.from('x') };
    assert.equal(configWriteRefusal(other), undefined, 'another key is not guarded');
  });

  it('refuses a CAS to anything but a consistent configuration with a higher epoch', () => {
    const bad: [string, unknown][] = [
      ['not JSON', '{oops'],
      ['not an object', 7],
      ['the same epoch', first],
      ['a lower epoch', { ...first, epoch: 0 }],
      ['no groups', { ...first, epoch: 2, groups: [] }],
      ['an owner that is not listed', { ...first, epoch: 2, owner: first.owner.map(() => 9) }],
      ['too few owners', { ...first, epoch: 2, owner: first.owner.slice(1) }],
      ['a group listed twice', { ...first, epoch: 2, groups: [group(1), group(1), group(2)] }],
      ['a replica without an address', { ...first, epoch: 2, groups: [group(1), { id: 2, replicas: [{ id: 21 }] }] }],
      ['a move that does not end at the owner', { ...first, epoch: 2, moves: [{ partition: 0, from: first.owner[0] === 1 ? 2 : 1, to: first.owner[0] === 1 ? 2 : 1 }] }],
      ['a move outside the partitions', { ...first, epoch: 2, moves: [{ partition: 64, from: 1, to: 2 }] }],
      ['a load factor below 1', { ...first, epoch: 2, loadFactor: 0.5 }],
    ];
    for (const [why, value] of bad) {
      const r = configWriteRefusal(cas(first, value));
      assert.equal(codeOf(r), 'BAD_REQUEST', why);
    }
    assert.match(configChangeProblem(first, first) ?? '', /epoch 1 does not follow/);
  });

  it('a malformed stored value may be replaced by a valid configuration', () => {
    const r: Request = { op: 'cas', ...session, key, expected: Buffer.from('garbage'), value: encodeConfig(first) };
    assert.equal(configWriteRefusal(r), undefined);
  });

  it('a shard replica refuses the key in every operation, and nothing else', () => {
    assert.equal(codeOf(configKeyElsewhere({ op: 'get', key, consistency: 'stale' })), 'BAD_REQUEST');
    assert.equal(codeOf(configKeyElsewhere({ op: 'batch', ...session, ops: [{ op: 'delete', key }] })), 'BAD_REQUEST');
    assert.equal(configKeyElsewhere({ op: 'get', key: Buffer.from('user'), consistency: 'stale' }), undefined);
    assert.equal(configKeyElsewhere({ op: 'scan', start: new Uint8Array(0), end: null, limit: 10, consistency: 'stale' }), undefined);
  });
});
