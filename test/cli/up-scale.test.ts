// Scale: `kvs up --shards 64` in the default 3 host processes — 195 replicas (the placement group
// and 64 shard groups of 3), 65 per process. Every group serves (keys land in all 64 and read
// back through the sharded client), and at rest every replica's group goes quiet (docs/raft.md).
// What it costs at rest is measured by `make bench-idle IDLE_ARGS="--shards 64 --layouts 3"`,
// not asserted here. Ports 30001-31200 (base 30001).
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { ShardedClient } from '../../src/client/sharded-client.ts';
import { placementEndpoints, type ClusterReplica } from '../../src/cli/cluster-file.ts';
import { KvsUp } from '../support/kvs-up.ts';
import { waitFor } from '../support/wait.ts';

const BASE_PORT = 30001;
const SHARDS = 64;
const KEYS = 2000;

/** The sum of a metric's samples on one replica's HTTP door (undefined if it does not answer). */
async function metric(r: ClusterReplica, name: string): Promise<number | undefined> {
  try {
    const text = await (await fetch(`http://${r.endpoints.http}/metrics`)).text();
    let sum: number | undefined;
    for (const line of text.split('\n')) if (line.startsWith(`${name} `)) sum = (sum ?? 0) + Number(line.slice(name.length + 1));
    return sum;
  } catch {
    return undefined;
  }
}

describe(`kvs up --shards ${SHARDS}: 195 replicas in 3 processes`, () => {
  const up = new KvsUp();
  after(() => up.stop());

  it('starts, every group serves, and every group goes quiet at rest', async () => {
    await up.start(['--shards', String(SHARDS), '--base-port', String(BASE_PORT)]).ready(300_000);
    const replicas = up.replicas();
    assert.equal(replicas.length, 3 * (SHARDS + 1));
    const pids = [...new Set(replicas.map((r) => r.pid))];
    assert.equal(pids.length, 3);
    for (const pid of pids) {
      const groups = replicas.filter((r) => r.pid === pid).map((r) => r.group);
      assert.equal(new Set(groups).size, SHARDS + 1, 'each process holds one replica of every group');
    }

    const client = new ShardedClient({ placement: placementEndpoints(replicas), timeoutMs: 20_000 });
    try {
      let next = 0;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          for (let i = next++; i < KEYS; i = next++) await client.put(`scale-${i}`, `v${i}`);
        }),
      );
      const dec = new TextDecoder();
      for (let i = 0; i < KEYS; i += 7) assert.equal(dec.decode((await client.get(`scale-${i}`))!), `v${i}`);
    } finally {
      client.close();
    }

    // Keys landed in every shard group (each group's leader holds some).
    const keysByGroup = new Map<number, number>();
    for (const r of replicas.filter((x) => x.group > 0)) {
      const n = (await metric(r, 'kvs_keys')) ?? 0;
      keysByGroup.set(r.group, Math.max(keysByGroup.get(r.group) ?? 0, n));
    }
    const empty = [...keysByGroup].filter(([, n]) => n === 0).map(([g]) => g);
    assert.deepEqual(empty, [], 'shard groups that hold no key');

    // At rest, every group goes quiet on every replica. (Not necessarily all at one instant: kvs up
    // keeps moving leaderships until each process leads a third of the groups, and a group wakes
    // for its transfer.)
    const seenQuiet = new Set<number>();
    await waitFor('every replica seen quiet', async () => {
      const q = await Promise.all(replicas.map((r) => (seenQuiet.has(r.id) ? 1 : metric(r, 'kvs_raft_quiet'))));
      replicas.forEach((r, i) => q[i] === 1 && seenQuiet.add(r.id));
      return seenQuiet.size === replicas.length || undefined;
    }, 60_000, 500).catch((e: Error) => {
      throw new Error(`${e.message}; never quiet: replicas ${replicas.filter((r) => !seenQuiet.has(r.id)).map((r) => r.id).join(', ')}`);
    });
  });
});
