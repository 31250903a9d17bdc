// The admin commands wait while the placement group has no leader. `kvs reshard` run right after
// two host processes of the default `kvs up` layout were killed -9 failed after 5 s with "no leader
// to confirm the read" (one read of the configuration, src/resharding/admin.ts) instead of waiting
// while kvs up restarted them and the group elected. Here the two processes killed are the
// placement leader's and one other, so no group has a quorum until they are back; kvs up itself is
// held stopped (SIGSTOP) for 7 s meanwhile, so that their restart comes later than those 5 s on
// any machine, as it does on a busy one. Each command runs at once, says on stderr what it waits
// for, and succeeds once the groups elect. Ports 25301-25620 (base 25301).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KvsClient } from '../../src/client/client.ts';
import { placementEndpoints, type ClusterReplica } from '../../src/cli/cluster-file.ts';
import { readConfig } from '../../src/resharding/admin.ts';
import { KvsUp } from '../support/kvs-up.ts';
import { reapOnExit } from '../support/processes.ts';
import { waitFor } from '../support/wait.ts';

const BASE_PORT = 25301;
const BIN = resolve(import.meta.dirname, '../../bin/kvs.js');
/** How long kvs up is held stopped after the kill: past the 5 s the old read waited. */
const HOLD_MS = 7000;

function run(args: string[]): { done: Promise<{ code: number | null; output: string; ms: number }> } {
  const started = Date.now();
  const child = reapOnExit(spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
  let output = '';
  child.stdout!.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (output += b.toString()));
  return { done: new Promise((r) => child.on('exit', (code) => r({ code, output, ms: Date.now() - started }))) };
}

/** Waits until every replica answers and every group has a leader, then kills -9 the placement leader's process and one other. */
async function killPlacementLeaderAndAnother(up: KvsUp): Promise<void> {
  const probe = new KvsClient({ endpoints: up.replicas().map((r) => r.endpoints.native), timeoutMs: 1000 });
  let found: { leader: ClusterReplica; replicas: ClusterReplica[] };
  try {
    found = await waitFor('every replica answering, the placement group led', async () => {
      // Read each time: cluster.json has the pids of processes restarted meanwhile.
      const replicas = up.replicas();
      const rows = await Promise.all(replicas.map(async (r) => ({ r, s: await probe.status(r.endpoints.native).catch(() => undefined) })));
      if (!rows.every((x) => x.s?.leaderId)) return undefined;
      const leader = rows.find((x) => x.r.role === 'placement' && x.s?.role === 'leader')?.r;
      return leader && { leader, replicas };
    }, 60_000, 200);
  } finally {
    probe.close();
  }
  const { leader, replicas } = found;
  const other = [...new Set(replicas.map((r) => r.pid))].find((pid) => pid !== leader.pid)!;
  up.signal('SIGSTOP');
  process.kill(leader.pid, 'SIGKILL');
  process.kill(other, 'SIGKILL');
}

describe('admin commands right after the placement leader\'s process was killed', () => {
  const up = new KvsUp();
  before(() => up.start(['--shards', '1', '--base-port', String(BASE_PORT)]).ready(120_000));
  after(() => up.stop());

  it('kvs reshard waits for the placement group to elect, then reshards', async () => {
    await killPlacementLeaderAndAnother(up);
    const reshard = run(['reshard', '--shards', '2', '--data', up.data]);
    await new Promise((r) => setTimeout(r, HOLD_MS));
    up.signal('SIGCONT');
    const { code, output, ms } = await reshard.done;
    assert.equal(code, 0, output);
    assert.ok(ms >= HOLD_MS, `it ran ${ms} ms: the placement group cannot have answered`);
    assert.match(output, /kvs reshard: waiting for the placement group to answer with the cluster configuration \(.*\); giving up in \d+(\.\d)? s/);
    assert.match(output, /kvs reshard: waited \d+(\.\d)? s for the placement group to answer/);
    assert.deepEqual((await readConfig(placementEndpoints(up.replicas()), 20_000))!.groups.map((g) => g.id), [1, 2]);
  });

  it('kvs replica remove waits for the placement group to elect, then removes the replica', async () => {
    await killPlacementLeaderAndAnother(up);
    const victim = up.replicas().find((r) => r.group === 1)!;
    const remove = run(['replica', 'remove', '--group', '1', '--id', String(victim.id), '--data', up.data]);
    await new Promise((r) => setTimeout(r, HOLD_MS));
    up.signal('SIGCONT');
    const { code, output } = await remove.done;
    assert.equal(code, 0, output);
    assert.match(output, /kvs replica: waiting for the placement group to answer with the cluster configuration \(.*\); giving up in \d+(\.\d)? s/);
    assert.match(output, new RegExp(`replica ${victim.id} removed from group 1 and stopped`));
    const group = (await readConfig(placementEndpoints(up.replicas()), 20_000))!.groups.find((g) => g.id === 1)!;
    assert.ok(!group.replicas.some((r) => r.id === victim.id), `group 1: ${JSON.stringify(group.replicas)}`);
  });

  it('a wait that runs out names what it waited for and the flag', async () => {
    await killPlacementLeaderAndAnother(up);
    try {
      const { code, output } = await run(['reshard', '--shards', '2', '--data', up.data, '--timeout-ms', '3000']).done;
      assert.equal(code, 3, output);
      assert.match(output, /kvs: gave up after \d+(\.\d)? s waiting for the placement group to answer with the cluster configuration \(--timeout-ms sets how long\): \d+ attempts?, the last failed with: /);
    } finally {
      up.signal('SIGCONT');
    }
  });
});
