// kvs up's default layout under a network partition: 3 `kvs host` processes, each in a network
// namespace of its own (test/support/netns.ts) and each running one replica of the placement group
// and of two shard groups. Cutting one process off cuts one replica of every group off at once:
// every group must go on serving from the other two processes (electing a leader there if its
// leader was cut off), and once healed the cut-off replicas catch up; no acknowledged write or
// delete is lost. Addresses 10.213.58.1-3, ports 22700+.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KvsClient } from '../../src/client/client.ts';
import { ShardedClient } from '../../src/client/sharded-client.ts';
import { SharedHosts } from '../../src/cli/replica-launcher.ts';
import { initCluster } from '../../src/resharding/admin.ts';
import type { StatusInfo } from '../../src/wire/index.ts';
import { AckedWriter, assertAllReadable } from '../resharding/acked-writer.ts';
import { Lan, netnsSkipReason } from '../support/netns.ts';
import { waitFor } from '../support/wait.ts';

const skip = netnsSkipReason();
const GROUPS = [0, 1, 2]; // 0: placement
const HOSTS = 3;

interface Placed {
  id: number;
  group: number;
  host: number;
  address: string;
}

describe('host processes partitioned from each other', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvs-host-partition-'));
  let lan: Lan;
  let hosts: SharedHosts;
  const replicas: Placed[] = [];
  const exits: string[] = [];

  const statuses = async (client: KvsClient, of: Placed[]): Promise<(StatusInfo | undefined)[]> => Promise.all(of.map((r) => client.status(r.address).catch(() => undefined)));

  before(async () => {
    lan = Lan.create(HOSTS, { prefix: 'kvsh', subnet: '10.213.58' });
    hosts = new SharedHosts(HOSTS, (k) => lan.wrap(k + 1), (k) => join(dir, `p${k}`));
    for (const g of GROUPS) {
      for (let j = 1; j <= 3; j++) {
        const id = g === 0 ? j : g * 100 + j;
        const host = hosts.hostOf(id, g);
        replicas.push({ id, group: g, host, address: `${lan.host(host + 1)}:${22700 + g * 10 + j}` });
      }
    }
    const placement = replicas.filter((r) => r.group === 0).map((r) => r.address);
    const launch = (r: Placed): void => {
      const members = replicas.filter((x) => x.group === r.group).map((x) => `${x.id}=${x.address}`).join(',');
      const argv = ['--id', String(r.id), '--group', String(r.group), '--listen', r.address, '--data', join(dir, `r${r.id}`), '--replicas', members, '--log-format', 'json', '--log-level', 'warn'];
      if (r.group !== 0) argv.push('--placement', placement.join(','));
      hosts.launch({ id: r.id, group: r.group, argv, label: undefined }, (code, signal) => void exits.push(`replica ${r.id}: ${signal ?? code}`));
    };
    for (const r of replicas.filter((x) => x.group === 0)) launch(r);
    await initCluster(
      placement,
      [1, 2].map((g) => ({ id: g, replicas: replicas.filter((r) => r.group === g).map((r) => ({ id: r.id, address: r.address })) })),
    );
    for (const r of replicas.filter((x) => x.group !== 0)) launch(r);
    const probe = new KvsClient({ endpoints: replicas.map((r) => r.address), timeoutMs: 2000 });
    try {
      await waitFor('every group led, every replica answering', async () => {
        const rows = await statuses(probe, replicas);
        return rows.every((s) => s !== undefined) && GROUPS.every((g) => rows.some((s) => s!.groupId === g && s!.role === 'leader')) ? true : undefined;
      }, 60_000, 250);
    } finally {
      probe.close();
    }
  });

  after(async () => {
    await hosts?.stopAll();
    lan?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('one process cut off: every group serves from the other two; healed, it catches up; nothing acknowledged is lost', async (t) => {
    assert.deepEqual(exits, []);
    const placement = replicas.filter((r) => r.group === 0).map((r) => r.address);
    const probe = new KvsClient({ endpoints: replicas.map((r) => r.address), timeoutMs: 2000 });
    const client = new ShardedClient({ placement, timeoutMs: 20_000, pollMs: 500 });
    const writer = new AckedWriter(client, 'hp', 5);
    writer.start();
    // The process that leads the most groups is the one cut off.
    const rows = await statuses(probe, replicas);
    const leads = Array.from({ length: HOSTS }, (_, k) => replicas.filter((r, i) => r.host === k && rows[i]?.role === 'leader').length);
    const victim = leads.indexOf(Math.max(...leads));
    const rest = replicas.filter((r) => r.host !== victim);
    try {
      await waitFor('writes before the cut', () => writer.acked.size >= 100 || undefined, 30_000);
      lan.isolate(victim + 1);
      const cutAt = Date.now();
      // Every group has a leader among the two connected processes, and writes go on.
      await waitFor('every group led by a connected process', async () => {
        const now = await statuses(probe, rest);
        return GROUPS.every((g) => now.some((s) => s?.groupId === g && s.role === 'leader')) ? true : undefined;
      }, 30_000, 200);
      t.diagnostic(`process ${victim} (leading ${leads[victim]} groups) cut off: every group led elsewhere after ${Date.now() - cutAt} ms`);
      const during = writer.acked.size;
      await waitFor('writes while cut off', () => writer.acked.size >= during + 100 || undefined, 30_000);
    } finally {
      lan.heal(victim + 1);
    }
    // Healed: the cut-off replicas apply what their group's leader had committed by then.
    const target = await waitFor('one leader per group, every replica answering', async () => {
      const now = await statuses(probe, replicas);
      if (now.some((s) => s === undefined)) return undefined;
      const commits = new Map<number, number>();
      for (const s of now) if (s!.role === 'leader') commits.set(s!.groupId, s!.commitIndex);
      return commits.size === GROUPS.length ? commits : undefined;
    }, 30_000, 250);
    await waitFor('the cut-off replicas caught up', async () => (await statuses(probe, replicas)).every((s) => s !== undefined && s.appliedIndex >= target.get(s.groupId)!) || undefined, 30_000, 250);
    await writer.stop();
    probe.close();
    const reader = new ShardedClient({ placement, timeoutMs: 20_000 });
    try {
      await assertAllReadable(reader, writer.acked);
    } finally {
      reader.close();
      client.close();
    }
    assert.deepEqual(exits, [], 'no replica exited');
  });
});
