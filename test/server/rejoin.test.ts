// A founding replica with an empty data directory asks the other founders whether its group has
// run (src/server/rejoin.ts): on Kubernetes a lost volume comes back empty, and a founder that
// bootstrapped on it would vote with an empty log (found in review, 2026-12-07: one lost volume
// plus one crash could lose committed writes).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { groupHasRun, type TermProbe } from '../../src/server/rejoin.ts';
import { loadConfig } from '../../src/server/config.ts';
import { KvsServer } from '../../src/server/server.ts';
import { KvsClient } from '../../src/client/client.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { waitFor } from '../support/wait.ts';

const probeOf =
  (terms: Record<string, (number | undefined)[]>): TermProbe =>
  (address) => {
    const list = terms[address]!;
    return Promise.resolve(list.length > 1 ? list.shift() : list[0]);
  };

describe('does the group run without me', () => {
  // A clock that moves 100 ms each time it is read, whatever the real time: the 5 s probe lasts
  // dozens of rounds however slowly they run on a loaded machine, and still ends.
  const stepping = (): (() => number) => {
    let t = 0;
    return () => (t += 100);
  };

  it('yes, once any founder reports a term above 0', async () => {
    assert.equal(await groupHasRun(['a', 'b'], probeOf({ a: [undefined], b: [3] }), 5000, stepping()), true);
    // b comes up after a round or two, already at its term.
    assert.equal(await groupHasRun(['a', 'b'], probeOf({ a: [0], b: [undefined, undefined, 2] }), 5000, stepping()), true);
  });

  it('no, as soon as every other founder answers at term 0 (a new group)', async () => {
    const asked: string[] = [];
    const probe = probeOf({ a: [0], b: [undefined, 0] });
    const counted: TermProbe = (address, timeoutMs) => {
      asked.push(address);
      return probe(address, timeoutMs);
    };
    // Without waiting out the probe: two rounds, not the dozens its 5 s would last.
    assert.equal(await groupHasRun(['a', 'b'], counted, 5000, stepping()), false);
    assert.deepEqual(asked, ['a', 'b', 'a', 'b'], 'two rounds: b answered in the second');
  });

  it('no, when nobody answers within the probe (the other founders are starting too)', async () => {
    assert.equal(await groupHasRun(['a', 'b'], probeOf({ a: [undefined], b: [undefined] }), 300), false);
    assert.equal(await groupHasRun([], probeOf({}), 300), false);
  });

  it('is asked only by a pod founder whose data directory is empty', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvs-rejoin-config-'));
    try {
      const pod = { 'pod-name': 'shard-0-1', 'dns-suffix': 'kvs.svc.cluster.local', listen: '0.0.0.0:7000', placement: 'p:1', data: join(dir, 'empty') };
      assert.equal(loadConfig(pod).rejoinCheck, true);
      assert.equal(loadConfig({ ...pod, 'pod-name': 'shard-0-4' }).rejoinCheck, undefined, 'past the founders: --join already');
      assert.equal(loadConfig({ id: '1', listen: '127.0.0.1:7001', data: join(dir, 'plain'), replicas: '1=127.0.0.1:7001,2=127.0.0.1:7002' }).rejoinCheck, undefined, 'not on Kubernetes');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a founder whose data directory was wiped', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvs-rejoin-'));
  const servers: KvsServer[] = [];
  after(async () => {
    for (const s of servers) await s.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts outside the configuration, and catches up from the leader', async () => {
    const ports = await Promise.all([0, 1, 2].map(() => freePort()));
    const replicas = ports.map((p, i) => `${i + 1}=127.0.0.1:${p}`).join(',');
    const config = (i: number, data = join(dir, `r${i + 1}`)): ReturnType<typeof loadConfig> =>
      loadConfig({ id: String(i + 1), listen: `127.0.0.1:${ports[i]}`, data, replicas, 'tick-ms': '20' });
    for (let i = 0; i < 3; i++) servers[i] = await KvsServer.start(config(i), { log: silentLogger });
    const client = new KvsClient({ endpoints: ports.map((p) => `127.0.0.1:${p}`), timeoutMs: 5000 });
    try {
      for (let k = 0; k < 20; k++) await client.put(`k${k}`, `v${k}`);
      // Replica 3 loses its volume: it comes back empty, on the same address, told to check.
      const leaderIndex = servers.findIndex((s) => s.replica.isLeader);
      const wiped = leaderIndex === 2 ? 1 : 2;
      await servers[wiped]!.close();
      const fresh = { ...config(wiped, join(dir, `r${wiped + 1}-wiped`)), rejoinCheck: true };
      servers[wiped] = await KvsServer.start(fresh, { log: silentLogger });
      const node = servers[wiped]!.replica.node;
      assert.equal(servers[wiped]!.config.lostData, true, 'the others report a term: the group has run');
      await waitFor('the wiped replica caught up', () => node.status.applied >= servers[leaderIndex]!.replica.node.status.commit && node.status.applied > 20);
      // Caught up by log entries (nothing was compacted), it still knows the founders: it is a
      // voter again, not a replica that acknowledges appends but never votes (found in review).
      assert.deepEqual(node.conf, { voters: [1, 2, 3], learners: [] });
      assert.equal(node.status.firstIndex, 1, 'by entries, not by a snapshot');
      const direct = new KvsClient({ endpoints: [`127.0.0.1:${ports[wiped]}`], timeoutMs: 5000 });
      try {
        assert.equal(Buffer.from((await direct.get('k19', { consistency: 'stale' }))!).toString(), 'v19');
      } finally {
        direct.close();
      }
    } finally {
      client.close();
    }
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}
