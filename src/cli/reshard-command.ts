// `kvs reshard --shards N`: change the number of shard groups of a running local cluster, live.
import { KvsClient, KvsError, MAX_TIMER_MS } from '../client/client.ts';
import { awaitConfig, readConfig, startReshard, waitForMoves } from '../resharding/admin.ts';
import { patiently, type Patience } from '../resharding/patience.ts';
import type { ClusterConfig, GroupInfo } from '../placement/config.ts';
import { callControl } from './control.ts';
import { placementEndpoints, readCluster, type ClusterReplica } from './cluster-file.ts';
import { ExitCode, UsageError, parse } from './args.ts';
import { progress } from './progress.ts';

const HELP = `Usage: kvs reshard --shards N [--data DIR] [--timeout-ms N]

Changes the number of shard groups of the cluster started by "kvs up" (data in DIR, default ./data)
while it serves traffic. New groups are started first; only partitions whose owner changes move,
each through the Raft logs of both groups; removed groups are drained, then stopped. Shows a
progress bar of partitions moved (plain lines when stdout is not a terminal).

  --timeout-ms N   how long to wait, before any partition moves, for the placement group and the
                   shard groups to have a leader (default 60000): right after their processes were
                   killed they answer once restarted and elected; it says on stderr what it waits for.
                   A reshard already in progress is followed first, outside this time`;

/** How long a reshard waits for the groups to answer before its moves start (--timeout-ms). */
const DEFAULT_TIMEOUT_MS = 60_000;

export async function runReshard(argv: string[]): Promise<number> {
  const args = parse(argv, { shards: { type: 'string' }, data: { type: 'string' }, 'timeout-ms': { type: 'string' } }, HELP);
  if (!args) return ExitCode.Ok;
  const dataDir = String(args.values.data ?? 'data');
  const n = Number(args.values.shards);
  if (!Number.isInteger(n) || n < 1 || n > 30) throw new UsageError('--shards must be an integer in 1..30');
  const t = args.values['timeout-ms'];
  const timeoutMs = t === undefined ? DEFAULT_TIMEOUT_MS : Number(t);
  // Past MAX_TIMER_MS setTimeout fires at once: the wait would end immediately.
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_TIMER_MS) throw new UsageError(`--timeout-ms must be a positive integer, at most ${MAX_TIMER_MS}`);
  const placement = placementEndpoints(readCluster(dataDir));
  if (placement.length === 0) throw new UsageError(`no sharded cluster in ${dataDir} (start one with "kvs up")`);
  // One deadline for everything before the moves start; each wait gets what is left of it.
  let deadline = Date.now() + timeoutMs;
  const patience = (): Patience => ({ timeoutMs: Math.max(1, deadline - Date.now()), flag: '--timeout-ms', say: (l) => console.error(`kvs reshard: ${l}`) });
  let config = await awaitConfig(placement, patience());
  if (!config) throw new Error('the placement group has no configuration yet');
  if (config.moves.length > 0) {
    console.log(`a reshard is in progress (${config.moves.length} partitions moving); following it first`);
    const before = moved();
    config = await waitForMoves(placement, config.moves.length, before.update);
    before.finish();
    // Following it is not waiting for a leader: the waits for ours start afresh (it may take
    // minutes, and left nothing of --timeout-ms: one failed attempt then gave up at once).
    deadline = Date.now() + timeoutMs;
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
  for (const g of groups) await waitForLeader(g, patience());
  const { config: next, inForce } = await storeReshard(placement, groups, config.epoch, patience());
  if (inForce) console.log(`epoch ${next.epoch}: ${current.length} → ${n} shard groups, in force already (an attempt that timed out stored it; its partitions have moved)`);
  else console.log(`epoch ${next.epoch}: ${current.length} → ${n} shard groups, ${next.moves.length} of ${next.partitions} partitions move`);
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

async function waitForLeader(g: GroupInfo, p: Patience): Promise<void> {
  await patiently(`shard group ${g.id} to elect a leader`, async () => {
    for (const r of g.replicas) {
      const c = new KvsClient({ endpoints: [r.address], timeoutMs: 500 });
      const s = await c.status(r.address).catch(() => undefined);
      c.close();
      if (s?.role === 'leader') return;
    }
    throw new KvsError('UNAVAILABLE', 'no replica of it says it leads');
  }, p);
}

/** What storeReshard found: the configuration of our reshard, and whether its moves are done already. */
export interface StoredReshard {
  config: ClusterConfig;
  /**
   * An attempt that timed out had stored it and its moves completed before the retry: the
   * configuration in force is ours (no move left), and storing it again would be an empty reshard.
   */
  inForce: boolean;
}

/**
 * Stores the reshard's configuration, waiting while the placement group cannot answer. An attempt
 * that timed out may have stored it: a later one then finds that reshard in progress, which is
 * ours when it moves to exactly our groups, or finished already: our groups exactly, no move
 * pending, and an epoch past `readEpoch` (the configuration the reshard was planned on).
 */
export async function storeReshard(placement: string[], groups: GroupInfo[], readEpoch: number, p: Patience): Promise<StoredReshard> {
  let mayHaveStored = false;
  const ids = (c: ClusterConfig): number[] => c.groups.map((g) => g.id).filter((id) => !c.leaving?.includes(id));
  const sameGroups = (c: ClusterConfig): boolean => ids(c).length === groups.length && groups.every((g) => ids(c).includes(g.id));
  const ours = (c: ClusterConfig | undefined): boolean => !!c && c.moves.length > 0 && sameGroups(c);
  const inForce = (c: ClusterConfig): boolean => c.moves.length === 0 && c.epoch > readEpoch && sameGroups(c);
  return patiently('the placement group to store the new configuration', async (left) => {
    try {
      let found = false;
      const config = await startReshard(placement, groups, Math.min(5000, left), (c) => (found = mayHaveStored && inForce(c)));
      return { config, inForce: found };
    } catch (e) {
      if (e instanceof KvsError && e.code === 'TIMEOUT') mayHaveStored = true;
      else if (mayHaveStored) {
        const now = await readConfig(placement, Math.min(5000, left));
        if (now && ours(now)) return { config: now, inForce: false };
      }
      throw e;
    }
  }, p);
}

function moved(): ReturnType<typeof progress> {
  return progress({ isTTY: process.stdout.isTTY === true, write: (t) => void process.stdout.write(t), what: 'partitions moved' });
}
