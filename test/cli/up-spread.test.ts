// `kvs replica add` then `kvs replica remove` of another replica of the group, through `kvs up`
// with its 3 host processes. The added replica lands beside one of the group; removing one on
// another host used to leave one process with 2 of the group's 3 replicas and another with none,
// so stopping that process stopped the group. Now `remove` spreads the group again (add in the
// process lacking one, then remove one of the doubled process: replica-spread.ts, spread-group.ts):
// every group ends with one replica per process, and with the process that held two frozen
// (SIGSTOP) the group still commits writes; then it is killed -9 and comes back. A second round
// kills the command in the middle of its rebalance; `kvs replica balance` finishes it.
// Ports 26501-26812 (base 26501).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { ShardedClient } from '../../src/client/sharded-client.ts';
import { placementEndpoints, type ClusterReplica } from '../../src/cli/cluster-file.ts';
import { intentPath } from '../../src/cli/spread-group.ts';
import { groupOf } from '../../src/placement/config.ts';
import { readConfig } from '../../src/resharding/admin.ts';
import { KvsUp } from '../support/kvs-up.ts';
import { reapOnExit } from '../support/processes.ts';
import { waitFor } from '../support/wait.ts';
import { resolve } from 'node:path';

const BASE_PORT = 26501;
const BIN = resolve(import.meta.dirname, '../../bin/kvs.js');
const GROUP = 1;

interface Run {
  code: number | null;
  output: string;
}

/** Runs `kvs replica ...args --data DIR`; `killWhen`: SIGKILL it once its output matches. */
function replicaCommand(data: string, args: string[], killWhen?: RegExp): Promise<Run> {
  const child = reapOnExit(spawn(process.execPath, [BIN, 'replica', ...args, '--data', data], { stdio: ['ignore', 'pipe', 'pipe'] }));
  let output = '';
  const take = (b: Buffer): void => {
    output += b.toString();
    if (killWhen?.test(output)) child.kill('SIGKILL');
  };
  child.stdout!.on('data', take);
  child.stderr!.on('data', take);
  return new Promise((r) => child.on('exit', (code) => r({ code, output })));
}

/** Replicas of `group` per process (cluster.json's pid is the host process's). */
function perProcess(replicas: ClusterReplica[], group: number): Map<number, number[]> {
  const m = new Map<number, number[]>();
  for (const r of replicas.filter((x) => x.group === group)) m.set(r.pid, [...(m.get(r.pid) ?? []), r.id]);
  return m;
}

function assertOnePerProcess(replicas: ClusterReplica[]): void {
  const pids = new Set(replicas.map((r) => r.pid));
  assert.equal(pids.size, 3, `pids ${[...pids].join(', ')}`);
  for (const g of new Set(replicas.map((r) => r.group))) {
    for (const [pid, ids] of perProcess(replicas, g)) assert.equal(ids.length, 1, `group ${g}: replicas ${ids.join(', ')} in process ${pid}`);
  }
}

/** Adds a replica of GROUP, then removes one in another process than the pair it made; the pair's pid. */
async function addThenRemoveElsewhere(up: KvsUp, removeArgs: (id: number) => string[], killWhen?: RegExp): Promise<{ doubled: number; run: Run }> {
  const added = await replicaCommand(up.data, ['add', '--group', String(GROUP)]);
  assert.equal(added.code, 0, added.output);
  const now = up.replicas();
  const doubled = [...perProcess(now, GROUP)].find(([, ids]) => ids.length === 2);
  assert.ok(doubled, `the added replica shares a process with one of its group: ${JSON.stringify([...perProcess(now, GROUP)])}`);
  const victim = now.find((r) => r.group === GROUP && r.pid !== doubled[0])!;
  const run = await replicaCommand(up.data, removeArgs(victim.id), killWhen);
  assert.ok(!up.replicas().some((r) => r.id === victim.id), `replica ${victim.id} still in cluster.json`);
  return { doubled: doubled[0], run };
}

async function assertListedAsRunning(up: KvsUp): Promise<void> {
  const config = await readConfig(placementEndpoints(up.replicas()));
  const listed = groupOf(config!, GROUP)!.replicas.map((r) => r.id).sort();
  assert.deepEqual(listed, up.replicas().filter((r) => r.group === GROUP).map((r) => r.id).sort(), 'the cluster configuration lists what kvs up runs');
}

describe('kvs up: a group stays spread over the host processes through adds and removes', () => {
  const up = new KvsUp();
  after(() => up.stop());

  it('add, then remove a replica on another process: one per process, and the old pair\'s process can die', async () => {
    await up.start(['--shards', '1', '--base-port', String(BASE_PORT)]).ready(120_000);
    assertOnePerProcess(up.replicas());
    const { doubled, run } = await addThenRemoveElsewhere(up, (id) => ['remove', '--group', String(GROUP), '--id', String(id)]);
    assert.equal(run.code, 0, run.output);
    assertOnePerProcess(up.replicas());
    assert.match(run.output, /spread over kvs up's host processes \(2 membership changes\)/);
    assert.equal(up.replicas().filter((r) => r.group === GROUP).length, 3);
    await assertListedAsRunning(up);
    assert.equal(existsSync(intentPath(up.data, GROUP)), false);

    // The process that held two: frozen, the group (every key is in group 1) still commits writes.
    const client = new ShardedClient({ placement: placementEndpoints(up.replicas()), timeoutMs: 10_000, pollMs: 500 });
    const acked = new Map<string, string>();
    const write = async (key: string): Promise<void> => {
      await client.put(key, `v-${key}`);
      acked.set(key, `v-${key}`);
    };
    process.kill(doubled, 'SIGSTOP');
    try {
      for (let i = 0; i < 50; i++) await write(`frozen-${i}`);
    } finally {
      process.kill(doubled, 'SIGKILL'); // kill -9 works on a stopped process
    }
    for (let i = 0; i < 50; i++) await write(`killed-${i}`);
    // kvs up restarts it (a new pid) with the same replicas, still one of each group per process.
    await waitFor('the host restarted', () => !up.replicas().some((r) => r.pid === doubled) || undefined, 30_000, 200);
    assertOnePerProcess(up.replicas());
    for (let i = 0; i < 50; i++) await write(`back-${i}`);
    for (const [k, v] of acked) assert.equal(new TextDecoder().decode((await client.get(k))!), v, k);
    client.close();
  });

  it('the rebalance killed half-way leaves the group serving; kvs replica balance finishes it', async () => {
    // Killed as soon as it starts removing the doubled replica, after adding the new one.
    const { run } = await addThenRemoveElsewhere(up, (id) => ['remove', '--group', String(GROUP), '--id', String(id)], /removing replica \d+, whose host/);
    assert.equal(run.code, null, `the command was to be killed mid-way:\n${run.output}`);
    assert.equal(existsSync(intentPath(up.data, GROUP)), true, 'the target count is kept for the rerun');
    const client = new ShardedClient({ placement: placementEndpoints(up.replicas()), timeoutMs: 10_000, pollMs: 500 });
    for (let i = 0; i < 20; i++) await client.put(`halfway-${i}`, 'x');
    const rerun = await replicaCommand(up.data, ['balance', '--group', String(GROUP)]);
    assert.equal(rerun.code, 0, rerun.output);
    assertOnePerProcess(up.replicas());
    assert.equal(up.replicas().filter((r) => r.group === GROUP).length, 3, rerun.output);
    await assertListedAsRunning(up);
    assert.equal(existsSync(intentPath(up.data, GROUP)), false);

    // Killed right after kvs up started the new replica, before it is in the group: the rerun takes
    // that one out again (it never counted) and spreads the group with a fresh one.
    const second = await addThenRemoveElsewhere(up, (id) => ['remove', '--group', String(GROUP), '--id', String(id)], /started replica \d+ in host process/);
    assert.equal(second.run.code, null, second.run.output);
    const again = await replicaCommand(up.data, ['balance', '--group', String(GROUP)]);
    assert.equal(again.code, 0, again.output);
    assertOnePerProcess(up.replicas());
    assert.equal(up.replicas().filter((r) => r.group === GROUP).length, 3, again.output);
    await assertListedAsRunning(up);
    for (let i = 0; i < 20; i++) assert.equal(new TextDecoder().decode((await client.get(`halfway-${i}`))!), 'x');
    await client.put('after-balance', 'y');
    client.close();
  });
});
