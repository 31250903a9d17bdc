// `kvs reshard --shards N`: change the number of shard groups of a running local cluster, live.
import { KvsClient } from '../client/client.ts';
import { readConfig, startReshard, waitForMoves } from '../resharding/admin.ts';
import type { GroupInfo } from '../placement/config.ts';
import { callControl } from './control.ts';
import { placementEndpoints, readCluster, type ClusterReplica } from './cluster-file.ts';
import { ExitCode, UsageError, parse } from './args.ts';
import { progress } from './progress.ts';

const HELP = `Usage: kvs reshard --shards N [--data DIR]

Changes the number of shard groups of the cluster started by "kvs up" (data in DIR, default ./data)
while it serves traffic. New groups are started first; only partitions whose owner changes move,
each through the Raft logs of both groups; removed groups are drained, then stopped. Shows a
progress bar of partitions moved (plain lines when stdout is not a terminal).`;

export async function runReshard(argv: string[]): Promise<number> {
  const args = parse(argv, { shards: { type: 'string' }, data: { type: 'string' } }, HELP);
  if (!args) return ExitCode.Ok;
  const dataDir = String(args.values.data ?? 'data');
  const n = Number(args.values.shards);
  if (!Number.isInteger(n) || n < 1 || n > 30) throw new UsageError('--shards must be an integer in 1..30');
  const placement = placementEndpoints(readCluster(dataDir));
  if (placement.length === 0) throw new UsageError(`no sharded cluster in ${dataDir} (start one with "kvs up")`);
  let config = await readConfig(placement);
  if (!config) throw new Error('the placement group has no configuration yet');
  if (config.moves.length > 0) {
    console.log(`a reshard is in progress (${config.moves.length} partitions moving); following it first`);
    const before = moved();
    config = await waitForMoves(placement, config.moves.length, before.update);
    before.finish();
  }
  const current = config.groups.map((g) => g.id).sort((a, b) => a - b);
  let target = current.slice(0, n);
  for (let g = Math.max(0, ...current) + 1; target.length < n; g++) {
    console.log(`starting shard group ${g}`);
    await callControl(dataDir, { cmd: 'add-group', group: g });
    target.push(g);
  }
  target = target.sort((a, b) => a - b);
  const replicas = readCluster(dataDir);
  // Groups already configured keep the replica lists the configuration has (kvs replica add/remove).
  const groups: GroupInfo[] = target.map((g) => config.groups.find((x) => x.id === g) ?? { id: g, replicas: replicasOf(replicas, g) });
  for (const g of groups) await waitForLeader(g);
  const next = await startReshard(placement, groups);
  console.log(`epoch ${next.epoch}: ${current.length} → ${n} shard groups, ${next.moves.length} of ${next.partitions} partitions move`);
  const started = Date.now();
  const bar = moved();
  const final = await waitForMoves(placement, next.moves.length, bar.update);
  bar.finish();
  // Every running shard group the configuration no longer lists is drained: stop it. Not only this
  // run's: a run killed after its moves started left its removed groups running, and a rerun
  // finds them gone from the configuration already.
  const configured = new Set(final.groups.map((g) => g.id));
  const running = [...new Set(readCluster(dataDir).filter((r) => r.role !== 'placement').map((r) => r.group))];
  for (const g of running.filter((x) => !configured.has(x)).sort((a, b) => a - b)) {
    await callControl(dataDir, { cmd: 'stop-group', group: g });
    console.log(`shard group ${g} drained and stopped`);
  }
  console.log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return ExitCode.Ok;
}

function replicasOf(replicas: ClusterReplica[], g: number): GroupInfo['replicas'] {
  return replicas.filter((r) => r.group === g && r.role !== 'placement').map((r) => ({ id: r.id, address: r.endpoints.native }));
}

async function waitForLeader(g: GroupInfo): Promise<void> {
  const until = Date.now() + 30_000;
  while (Date.now() < until) {
    for (const r of g.replicas) {
      const c = new KvsClient({ endpoints: [r.address], timeoutMs: 500 });
      const s = await c.status(r.address).catch(() => undefined);
      c.close();
      if (s?.role === 'leader') return;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`shard group ${g.id} elected no leader`);
}

function moved(): ReturnType<typeof progress> {
  return progress({ isTTY: process.stdout.isTTY === true, write: (t) => void process.stdout.write(t), what: 'partitions moved' });
}
