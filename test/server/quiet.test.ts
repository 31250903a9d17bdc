// Quiet groups with real processes (docs/raft.md): an idle group's leader drops to one heartbeat per
// election timeout, a write brings the normal rhythm back, and a quiet leader killed -9 is replaced
// (followers wait QUIET_FACTOR election timeouts) with nothing acknowledged lost.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AckedWriter, assertAllReadable } from '../resharding/acked-writer.ts';
import { waitFor } from '../support/wait.ts';
import { TestCluster, sleep } from './cluster.ts';

const BASE = 22500;
const HTTP = 22600;

/** One sample of a replica's /metrics (undefined: not answering, or no such sample). */
async function metric(id: number, name: string): Promise<number | undefined> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${HTTP + id}/metrics`)).text();
    let sum: number | undefined;
    for (const line of text.split('\n')) {
      if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) sum = (sum ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return sum;
  } catch {
    return undefined;
  }
}

describe('quiet groups (real processes)', () => {
  let cluster: TestCluster;
  before(async () => {
    cluster = await TestCluster.start({ basePort: BASE, wrap: (id) => ['env', `KVS_HTTP=127.0.0.1:${HTTP + id}`] });
  });
  after(async () => {
    await cluster?.stop();
  });

  const allQuiet = async (): Promise<true | undefined> => {
    const q = await Promise.all(cluster.ids.filter((id) => cluster.isRunning(id)).map((id) => metric(id, 'kvs_raft_quiet')));
    return q.every((v) => v === 1) ? true : undefined;
  };

  it('an idle group goes quiet: its leader sends a tenth of the frames, and a write wakes it', async () => {
    await waitFor('every replica quiet', allQuiet, 20_000, 200);
    const leader = (await cluster.waitForLeader()).replicaId;
    const frames = (): Promise<number | undefined> => metric(leader, 'kvs_peer_frames_sent_total');
    const sentIn = async (ms: number): Promise<number> => {
      const a = (await frames())!;
      await sleep(ms);
      return (await frames())! - a;
    };
    // Quiet: one heartbeat per election timeout (500 ms) to each of 2 followers; awake: one per 50 ms tick.
    const quietFrames = await sentIn(2000);
    assert.ok(quietFrames <= 20, `${quietFrames} frames in 2 s while quiet (awake it would be ~80)`);

    const client = cluster.client();
    try {
      // Writes keep the group awake: the leader is not quiet while they run. They go on until it is
      // seen awake (not for a fixed 300 ms: on a loaded machine the first write may not have reached
      // the leader by then), and at least 40 of them.
      let awake = false;
      let written = 0;
      const writing = (async () => {
        for (; written < 40 || !awake; written++) {
          await client.put(`quiet-${written}`, 'v');
          await sleep(25);
        }
      })();
      try {
        await waitFor('the leader awake while writes arrive', async () => (await metric(leader, 'kvs_raft_quiet')) === 0, 20_000, 50);
      } finally {
        awake = true;
      }
      await writing;
      assert.equal((await client.get(`quiet-${written - 1}`))?.toString(), 'v');
    } finally {
      client.close();
    }
    await waitFor('quiet again once idle', allQuiet, 20_000, 200);
  });

  it('a quiet leader killed -9 is replaced, and nothing acknowledged is lost', async () => {
    const client = cluster.client({ timeoutMs: 3000 });
    const writer = new AckedWriter(client, 'quietkill');
    try {
      writer.start();
      await waitFor('some writes', () => writer.acked.size >= 80 || undefined, 30_000);
      await writer.stop();
      await waitFor('quiet after the writes', allQuiet, 20_000, 200);
      const old = (await cluster.waitForLeader()).replicaId;
      await cluster.kill(old);
      const killedAt = performance.now();
      const next = await cluster.waitForLeader(20_000, old);
      const tookMs = performance.now() - killedAt;
      assert.notEqual(next.replicaId, old);
      // Followers of a quiet leader wait 3 election timeouts (1.5-3 s by default) before campaigning.
      assert.ok(tookMs < 10_000, `new leader after ${Math.round(tookMs)} ms`);
      await client.put('after-quiet-kill', 'x');
      await cluster.restart(old);
      await assertAllReadable(client, writer.acked);
      await waitFor('quiet again with the old leader back', allQuiet, 30_000, 200);
    } finally {
      await writer.stop();
      client.close();
    }
  });
});
