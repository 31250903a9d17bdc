// The placement group's replicas serve the sharded store too: `kvs up` puts them on the first ports
// (7001-7003), so a client pointed there must read and write the same keys as one pointed at the
// shard groups, not a private corner of the placement group. Ports 28000-28022.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { KvsClient } from '../../src/client/client.ts';
import { readConfig, startReshard, waitForMoves } from '../../src/resharding/admin.ts';
import { CONFIG_KEY, encodeConfig } from '../../src/placement/config.ts';
import { ShardedCluster } from './cluster.ts';

const dec = new TextDecoder();

describe('the placement group as a front door', () => {
  const clusters: ShardedCluster[] = [];
  const clients: KvsClient[] = [];
  after(async () => {
    for (const c of clients) c.close();
    await Promise.all(clusters.map((c) => c.stop()));
  });

  it('a client of the placement replicas reads and writes the sharded store; the configuration stays where it is', async () => {
    const c = new ShardedCluster(28000, 3);
    clusters.push(c);
    await c.start(2, 64);
    const viaPlacement = new KvsClient({ endpoints: c.placement(), timeoutMs: 10_000 });
    const viaShards = c.client();
    clients.push(viaPlacement, viaShards);

    const keys = Array.from({ length: 50 }, (_, i) => `front-${i}`);
    for (const k of keys) await viaPlacement.put(k, `p-${k}`);
    for (const k of keys) assert.equal(dec.decode((await viaShards.get(k))!), `p-${k}`, `${k} written through the placement group is in the shard groups`);
    await viaShards.put('from-shards', 'x');
    assert.equal(dec.decode((await viaPlacement.get('from-shards'))!), 'x');
    await viaPlacement.batch([
      { op: 'put', key: 'fb-1', value: '1' },
      { op: 'delete', key: 'front-0' },
    ]);
    assert.equal(await viaShards.get('front-0'), null);
    assert.equal(dec.decode((await viaShards.get('fb-1'))!), '1');

    // Scans and counts cover the shard groups only: the configuration key is not a user key.
    const scanned: string[] = [];
    for await (const kv of viaPlacement.scanAll('', null)) scanned.push(dec.decode(kv.key));
    assert.deepEqual(scanned, [...keys.slice(1), 'fb-1', 'from-shards'].sort());
    assert.equal(await viaPlacement.count(), scanned.length);
    assert.equal(await viaShards.count(), scanned.length);

    // The configuration is still the placement group's: read, and changed by a live reshard.
    const before = (await readConfig(c.placement()))!;
    const stored = (await viaPlacement.get(CONFIG_KEY))!;
    // No door may overwrite it with anything but a whole configuration with a higher epoch.
    const refused = (code: string) => (e: unknown) => (e as { code?: string }).code === code;
    await assert.rejects(viaPlacement.put(CONFIG_KEY, 'oops'), refused('BAD_REQUEST'), 'a plain put of the configuration key is refused');
    await assert.rejects(viaPlacement.delete(CONFIG_KEY), refused('BAD_REQUEST'), 'so is a delete');
    await assert.rejects(viaPlacement.batch([{ op: 'put', key: CONFIG_KEY, value: '{}' }]), refused('BAD_REQUEST'), 'and a batch naming it');
    await assert.rejects(viaPlacement.cas(CONFIG_KEY, stored, 'oops'), refused('BAD_REQUEST'), 'a CAS to a value that is no configuration');
    await assert.rejects(viaPlacement.cas(CONFIG_KEY, stored, encodeConfig({ ...before, groups: [] })), refused('BAD_REQUEST'), 'a CAS to a configuration without groups');
    await assert.rejects(viaPlacement.cas(CONFIG_KEY, stored, encodeConfig(before)), refused('BAD_REQUEST'), 'a CAS that does not raise the epoch');
    assert.deepEqual(await viaPlacement.get(CONFIG_KEY), stored, 'the configuration is unchanged');
    // Through a shard replica the key is reserved, not a user key that reads differently.
    await assert.rejects(viaShards.get(CONFIG_KEY), refused('BAD_REQUEST'));
    await assert.rejects(viaShards.put(CONFIG_KEY, 'x'), refused('BAD_REQUEST'));
    c.startGroup(3);
    await c.waitForLeader(3);
    const cfg = await startReshard(c.placement(), c.shardGroups([1, 2, 3]));
    await waitForMoves(c.placement(), cfg.moves.length, undefined, 120_000);
    const afterReshard = (await readConfig(c.placement()))!;
    assert.ok(afterReshard.epoch > before.epoch);
    assert.deepEqual(new Set(afterReshard.owner), new Set([1, 2, 3]));
    for (const k of keys.slice(1)) assert.equal(dec.decode((await viaPlacement.get(k))!), `p-${k}`);
  });
});
