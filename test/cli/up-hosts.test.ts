// `kvs up` with its default layout: 3 host processes, each running one replica of every group
// (host-command.ts). A host killed with SIGKILL under load takes one replica of every group down at
// once: every group keeps serving on the other two, the supervisor restarts the host with the same
// replicas, they catch up, and no acknowledged write is lost. The replicas of a process keep their
// stores in one LMDB environment (p<k>, shared-env.ts), which the kill takes down at once; a
// reshard between groups hosted in the same processes puts the new group's stores there too.
// Ports 28501-28812 (base 28501).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { KvsClient } from '../../src/client/client.ts';
import { ShardedClient } from '../../src/client/sharded-client.ts';
import { placementEndpoints } from '../../src/cli/cluster-file.ts';
import { readConfig } from '../../src/resharding/admin.ts';
import type { StatusInfo } from '../../src/wire/index.ts';
import type { ClusterReplica } from '../../src/cli/cluster-file.ts';
import { KvsUp } from '../support/kvs-up.ts';
import { reapOnExit } from '../support/processes.ts';
import { waitFor } from '../support/wait.ts';

const BASE_PORT = 28501;
const BIN = resolve(import.meta.dirname, '../../bin/kvs.js');

/** The shared environment a replica's store is in (its marker, resolved). */
function storeEnvOf(r: ClusterReplica): string {
  const m = JSON.parse(readFileSync(join(r.dataDir, 'shared-store.json'), 'utf8')) as { env: string };
  return resolve(r.dataDir, m.env);
}

/** Every process keeps its replicas' stores in one environment of its own. */
function assertOneEnvironmentPerProcess(replicas: ClusterReplica[]): void {
  const envs = new Map<number, Set<string>>();
  for (const r of replicas) envs.set(r.pid, (envs.get(r.pid) ?? new Set()).add(storeEnvOf(r)));
  for (const [pid, set] of envs) assert.equal(set.size, 1, `process ${pid}: stores in ${[...set].join(', ')}`);
  const all = [...envs.values()].map((set) => [...set][0]!);
  assert.equal(new Set(all).size, envs.size, `processes share an environment: ${all.join(', ')}`);
  for (const e of all) assert.match(e, /\/p\d$/);
  assert.equal(dirname(all[0]!), dirname(replicas[0]!.dataDir));
}

/** Writers through a sharded client until stopped; what was acknowledged. */
function startWriters(client: ShardedClient, prefix: string, count: number): { acked: Map<string, string>; stop: () => Promise<void> } {
  const acked = new Map<string, string>();
  let n = 0;
  let writing = true;
  const writers = Array.from({ length: count }, async () => {
    while (writing) {
      const key = `${prefix}${n++}`;
      const value = `v-${key}`;
      await client.put(key, value).then(
        () => void acked.set(key, value),
        () => undefined, // unknown outcome: neither counted nor checked
      );
    }
  });
  return {
    acked,
    stop: async () => {
      writing = false;
      await Promise.all(writers);
    },
  };
}

async function assertAllRead(client: ShardedClient, acked: Map<string, string>): Promise<void> {
  const lost: string[] = [];
  for (const [key, value] of acked) {
    const got = await client.get(key);
    if (got === null || new TextDecoder().decode(got) !== value) lost.push(key);
  }
  assert.deepEqual(lost, [], `${lost.length} of ${acked.size} acknowledged writes lost`);
}

describe('kvs up: replicas in 3 host processes', () => {
  const up = new KvsUp();
  after(() => up.stop());

  it('a host killed -9 under load: every group serves on, the host comes back, nothing acknowledged is lost', async () => {
    await up.start(['--shards', '2', '--base-port', String(BASE_PORT)]).ready(120_000);

    // The layout: 9 replicas in 3 processes, each holding exactly one replica of every group.
    const replicas = up.replicas();
    const pids = [...new Set(replicas.map((r) => r.pid))];
    assert.equal(pids.length, 3, `pids: ${pids.join(', ')}`);
    for (const pid of pids) assert.deepEqual(replicas.filter((r) => r.pid === pid).map((r) => r.group).sort(), [0, 1, 2]);

    assertOneEnvironmentPerProcess(replicas);

    // "ready" waits for the leaders to be spread (one per process here), so nothing moves after it
    // that a first client could run into: one look, no waiting.
    const atReady = new KvsClient({ endpoints: replicas.map((r) => r.endpoints.native), timeoutMs: 2000 });
    const leaderPids = new Map<number, { term: number; pid: number }>();
    for (const r of replicas) {
      const s = await atReady.status(r.endpoints.native);
      const known = leaderPids.get(s.groupId);
      if (s.role === 'leader' && (!known || known.term < s.term)) leaderPids.set(s.groupId, { term: s.term, pid: r.pid });
    }
    atReady.close();
    assert.deepEqual([...leaderPids.values()].map((l) => l.pid).sort(), [...pids].sort(), 'one leader per process at "ready"');

    const client = new ShardedClient({ placement: placementEndpoints(replicas), timeoutMs: 20_000, pollMs: 500 });
    const { acked, stop: stopWriters } = startWriters(client, 'k', 8);
    try {
      await waitFor('writes before the kill', () => acked.size >= 200 || undefined, 30_000);
      const victim = pids[1]!;
      process.kill(victim, 'SIGKILL');
      const before = acked.size;
      // Every group keeps a quorum: writes continue while the host is down.
      await waitFor('writes with one host down', () => acked.size >= before + 200 || undefined, 30_000);
      // The supervisor restarts the host with the same replicas (new pid in cluster.json).
      const restarted = await waitFor('the host restarted', () => {
        const now = up.replicas();
        const newPids = new Set(now.map((r) => r.pid));
        return newPids.size === 3 && !newPids.has(victim) ? now : undefined;
      }, 30_000, 200);
      // Its replicas catch up: each applies what its group's leader had committed once all answered.
      const status = new KvsClient({ endpoints: restarted.map((r) => r.endpoints.native), timeoutMs: 2000 });
      try {
        const rowsNow = (): Promise<(StatusInfo | undefined)[]> => Promise.all(restarted.map((r) => status.status(r.endpoints.native).catch(() => undefined)));
        const target = await waitFor('every replica answering, every group led', async () => {
          const rows = await rowsNow();
          const commits = new Map<number, number>();
          for (const s of rows) if (s?.role === 'leader') commits.set(s.groupId, s.commitIndex);
          return rows.every((s) => s !== undefined) && commits.size === 3 ? commits : undefined;
        }, 60_000, 250);
        await waitFor('every replica caught up', async () => (await rowsNow()).every((s) => s !== undefined && s.appliedIndex >= target.get(s.groupId)!) || undefined, 60_000, 250);
      } finally {
        status.close();
      }
      const after = acked.size;
      await waitFor('writes after the restart', () => acked.size >= after + 100 || undefined, 30_000);
    } finally {
      await stopWriters();
    }
    // Every acknowledged write reads back, linearizably.
    await assertAllRead(client, acked);
    client.close();

    // Leaders spread over the processes again (kvs up moves leaderships while one process leads 2
    // more groups than another): the placement group and 2 shard groups, one leader per process.
    const spreadProbe = new KvsClient({ endpoints: up.replicas().map((r) => r.endpoints.native), timeoutMs: 2000 });
    await waitFor('leaders spread over the processes', async () => {
      const now = up.replicas();
      const rows = await Promise.all(now.map(async (r) => ({ r, s: await spreadProbe.status(r.endpoints.native).catch(() => undefined) })));
      const per = new Map<number, number>(now.map((r) => [r.pid, 0]));
      for (const x of rows) if (x.s?.role === 'leader') per.set(x.r.pid, per.get(x.r.pid)! + 1);
      const leads = [...per.values()];
      return leads.reduce((a, b) => a + b, 0) === 3 && Math.max(...leads) - Math.min(...leads) <= 1 ? true : undefined;
    }, 30_000, 500);
    spreadProbe.close();

    // A door whose process also runs the leader of another shard group hands that group's keys to
    // it in-process (kvs_shard_routed_total{to="hosted"}); every key still reads back.
    const now = up.replicas();
    const probe = new KvsClient({ endpoints: now.map((r) => r.endpoints.native), timeoutMs: 5000 });
    const door = await waitFor('a shard replica beside the leader of another shard group', async () => {
      const rows = await Promise.all(now.map(async (r) => ({ r, s: await probe.status(r.endpoints.native).catch(() => undefined) })));
      const leader = rows.find((x) => x.r.group !== 0 && x.s?.role === 'leader');
      return leader ? now.find((r) => r.pid === leader.r.pid && r.group !== 0 && r.group !== leader.r.group) : undefined;
    }, 20_000, 200);
    probe.close();
    const through = new KvsClient({ endpoints: [door.endpoints.native], timeoutMs: 10_000 });
    for (let i = 0; i < 60; i++) await through.put(`door-${i}`, `d${i}`);
    for (let i = 0; i < 60; i++) assert.equal(new TextDecoder().decode((await through.get(`door-${i}`))!), `d${i}`);
    through.close();
    const metrics = await (await fetch(`http://${door.endpoints.http}/metrics`)).text();
    const hosted = Number(/^kvs_shard_routed_total\{to="hosted"\} (\d+)/m.exec(metrics)?.[1] ?? 0);
    assert.ok(hosted > 0, `no request went to a leader in the same process:\n${metrics.split('\n').filter((l) => l.includes('shard_routed')).join('\n')}`);

    // A door whose process runs a follower of another shard group serves that group's keys'
    // linearizable reads through it (kvs_shard_routed_total{to="hosted-read"}): each reads back
    // the value just written through another door.
    const roles = new KvsClient({ endpoints: now.map((r) => r.endpoints.native), timeoutMs: 5000 });
    const rows = await Promise.all(now.map(async (r) => ({ r, s: await roles.status(r.endpoints.native).catch(() => undefined) })));
    roles.close();
    const followerOf = (r: ClusterReplica): boolean => rows.some((x) => x.r.pid === r.pid && x.r.group !== 0 && x.r.group !== r.group && x.s?.role === 'follower');
    const readDoor = now.find((r) => r.group !== 0 && followerOf(r))!;
    assert.ok(readDoor, 'some process runs a follower of a group other than its door');
    const writer = new KvsClient({ endpoints: [door.endpoints.native], timeoutMs: 10_000 });
    const reader = new KvsClient({ endpoints: [readDoor.endpoints.native], timeoutMs: 10_000 });
    for (let i = 0; i < 60; i++) {
      await writer.put(`read-${i}`, `r${i}`);
      assert.equal(new TextDecoder().decode((await reader.get(`read-${i}`))!), `r${i}`, `read-${i} right after its write`);
    }
    writer.close();
    reader.close();
    const readMetrics = await (await fetch(`http://${readDoor.endpoints.http}/metrics`)).text();
    const hostedReads = Number(/^kvs_shard_routed_total\{to="hosted-read"\} (\d+)/m.exec(readMetrics)?.[1] ?? 0);
    assert.ok(hostedReads > 0, `no read went to a follower in the same process:\n${readMetrics.split('\n').filter((l) => l.includes('shard_routed')).join('\n')}`);
  });
  it('a reshard 2 -> 3 under load between groups hosted in the same processes: nothing acknowledged is lost', async () => {
    const client = new ShardedClient({ placement: placementEndpoints(up.replicas()), timeoutMs: 20_000, pollMs: 500 });
    const { acked, stop } = startWriters(client, 'r', 8);
    let code: number | null;
    let output = '';
    try {
      await waitFor('writes before the reshard', () => acked.size >= 200 || undefined, 30_000);
      const reshard = reapOnExit(spawn(process.execPath, [BIN, 'reshard', '--shards', '3', '--data', up.data], { stdio: ['ignore', 'pipe', 'pipe'] }));
      reshard.stdout!.on('data', (b: Buffer) => (output += b.toString()));
      reshard.stderr!.on('data', (b: Buffer) => (output += b.toString()));
      code = await new Promise<number | null>((r) => reshard.on('exit', (c) => r(c)));
      const after = acked.size;
      await waitFor('writes after the reshard', () => acked.size >= after + 100 || undefined, 30_000);
    } finally {
      await stop();
    }
    assert.equal(code, 0, output);
    const replicas = up.replicas();
    assert.deepEqual([...new Set(replicas.map((r) => r.group))].sort(), [0, 1, 2, 3]);
    assertOneEnvironmentPerProcess(replicas);
    await assertAllRead(client, acked);
    client.close();
  });

  it('a shrink 3 -> 2 whose kvs reshard is killed once moves started: a rerun finishes it and stops the drained group', async () => {
    const placement = placementEndpoints(up.replicas());
    const reshard = (): ReturnType<typeof spawn> => reapOnExit(spawn(process.execPath, [BIN, 'reshard', '--shards', '2', '--data', up.data], { stdio: ['ignore', 'pipe', 'pipe'] }));
    const first = reshard();
    const exited = new Promise<void>((r) => first.on('exit', () => r()));
    // Killed as soon as the placement group holds the shrink's moves (or at once, if it finished).
    await waitFor('the shrink under way', async () => ((await readConfig(placement).catch(() => undefined))?.moves.length ?? 0) > 0 || first.exitCode !== null || undefined, 30_000, 20);
    first.kill('SIGKILL');
    await exited;
    let output = '';
    const second = reshard();
    second.stdout!.on('data', (b: Buffer) => (output += b.toString()));
    second.stderr!.on('data', (b: Buffer) => (output += b.toString()));
    const code = await new Promise<number | null>((r) => second.on('exit', (c) => r(c)));
    assert.equal(code, 0, output);
    assert.deepEqual((await readConfig(placement))!.groups.map((g) => g.id), [1, 2]);
    assert.deepEqual([...new Set(up.replicas().map((r) => r.group))].sort(), [0, 1, 2], `group 3 is stopped and gone from cluster.json:\n${output}`);
  });
});
