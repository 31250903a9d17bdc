// Where a `kvs bench` run sends its requests: endpoints of the chosen door, writes to the leader
// (found through STATUS, or etcdctl for etcd), and for a sharded cluster (`kvs up` starts a
// placement group and shard groups) each key to the group that owns it, from the partition table.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readCluster, type ClusterReplica } from '../../src/cli/cluster-file.ts';
import { KvsClient } from '../../src/client/client.ts';
import { createPartitioner } from '../../src/partition/hash.ts';
import { readConfig } from '../../src/resharding/admin.ts';
import type { Protocol } from '../drivers/index.ts';
import type { DriverTarget } from './driver.ts';
import type { KeySpace } from './keys.ts';

const exec = promisify(execFile);

export interface TargetOptions {
  protocol: Protocol;
  /** 'leader', 'all', or one host:port. */
  writesTo: string;
  /** 'all' or 'leader'. */
  reads: string;
}

const doorOf = (p: Protocol): string => (p === 'kvs-grpc' ? 'grpc' : p === 'resp' ? 'resp' : 'native');

/** Native address of the group's leader, asking each replica until one knows. */
export async function kvsLeaderNative(natives: string[]): Promise<string> {
  const c = new KvsClient({ endpoints: natives, timeoutMs: 3000 });
  try {
    for (const e of natives) {
      const s = await c.status(e).catch(() => undefined);
      if (s?.role === 'leader') return e;
      if (s?.leaderAddr) return s.leaderAddr;
    }
  } finally {
    c.close();
  }
  throw new Error(`no leader found among ${natives.join(', ')}`);
}

export async function etcdLeader(endpoints: string[]): Promise<string> {
  const { stdout } = await exec('etcdctl', ['--endpoints', endpoints.join(','), 'endpoint', 'status', '-w', 'json'], { timeout: 10_000 });
  // Member ids are u64: keep them as strings (JSON.parse would round them).
  const rows = JSON.parse(stdout.replace(/"(member_id|leader|cluster_id)":(\d+)/g, '"$1":"$2"')) as { Endpoint: string; Status: { header: { member_id: string }; leader: string } }[];
  const l = rows.find((r) => r.Status.header.member_id === r.Status.leader);
  if (!l) throw new Error('etcd has no leader');
  return l.Endpoint;
}

/** One group's write and read endpoints (door addresses), natives used to find the leader. */
async function groupRoute(endpoints: string[], natives: string[], o: TargetOptions): Promise<{ write: string[]; read: string[] }> {
  let write = endpoints;
  if (o.writesTo === 'leader') {
    if (o.protocol === 'etcd') write = [await etcdLeader(endpoints)];
    else if (natives.length > 0) {
      const leader = await kvsLeaderNative(natives);
      const i = natives.indexOf(leader);
      write = [i >= 0 ? endpoints[i]! : leader];
    }
  } else if (o.writesTo !== 'all') write = [o.writesTo];
  return { write, read: o.reads === 'leader' ? write : endpoints };
}

export async function endpointsTarget(endpoints: string[], o: TargetOptions): Promise<DriverTarget> {
  return groupRoute(endpoints, o.protocol === 'native' ? endpoints : [], o);
}

/** A `kvs up` cluster (DIR/cluster.json); also returns the server pids for CPU accounting. */
export async function clusterTarget(dir: string, o: TargetOptions, space: KeySpace): Promise<{ target: DriverTarget; pids: number[] }> {
  const reps = readCluster(dir);
  if (reps.length === 0) throw new Error(`no cluster.json in ${dir}`);
  const door = doorOf(o.protocol);
  const addr = (r: ClusterReplica): string => {
    const a = r.endpoints[door];
    if (!a) throw new Error(`cluster.json lists no ${door} endpoint for replica ${r.id}`);
    return a;
  };
  const pids = reps.map((r) => r.pid).filter((p) => p > 0);
  const groupIds = [...new Set(reps.map((r) => r.group))].sort((a, b) => a - b);
  if (groupIds.length === 1) {
    return { target: await groupRoute(reps.map(addr), reps.map((r) => r.endpoints.native), o), pids };
  }
  // Sharded: group 0 is the placement group (configuration only); keys live in the shard groups.
  const placement = reps.filter((r) => r.group === 0).map((r) => r.endpoints.native);
  const config = await readConfig(placement);
  if (!config) throw new Error('the placement group holds no cluster configuration yet');
  if (config.moves.length > 0) console.error(`# note: ${config.moves.length} partitions are moving; requests for them may be forwarded`);
  const shardIds = groupIds.filter((g) => g !== 0);
  const groups = await Promise.all(
    shardIds.map((g) => {
      const members = reps.filter((r) => r.group === g);
      return groupRoute(members.map(addr), members.map((r) => r.endpoints.native), o);
    }),
  );
  const partitioner = await createPartitioner(config.partitions);
  const index = new Map(shardIds.map((g, i) => [g, i]));
  const keyGroups = space.keyViews().map((k) => index.get(config.owner[partitioner.partitionOf(k)]!) ?? 0);
  return { target: { write: groups[0]!.write, read: groups[0]!.read, groups, keyGroups }, pids };
}
