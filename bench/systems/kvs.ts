// This store on 127.0.0.1: Raft groups of `kvs server` processes, data in the run directory.
// Doors other than the native one (RESP, gRPC) are switched on when `kvs server --help` offers
// them, so the benchmark picks them up as they land.
//
// Sharded (`shards: G`): a placement group (group 0) plus shard groups 1..G, the first cluster
// configuration written through the placement group, as test/resharding/cluster.ts does. The
// driver then routes each key to the leader of the group that owns it (ownerIndex), as a client
// holding the partition table would; servers would forward a misrouted request anyway.
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KvsClient } from '../../src/client/client.ts';
import { createPartitioner } from '../../src/partition/hash.ts';
import type { GroupInfo } from '../../src/placement/config.ts';
import { initCluster } from '../../src/resharding/admin.ts';
import { nextTransfer } from '../../src/cli/leader-balance.ts';
import { logTail, start, supervise, waitFor, type Managed, type Supervised } from './procs.ts';

const REPO = resolve(fileURLToPath(import.meta.url), '../../..');
let BIN = join(REPO, 'bin/kvs.js');

/**
 * Copies the server's sources (as they are now, committed or not) into `dir` and runs servers from
 * there: a benchmark of several minutes then measures one version even while the tree is edited.
 * node_modules is linked, not copied. Checks the copy starts, so a half-edited tree fails fast.
 */
export function snapshotServer(dir: string): string {
  mkdirSync(dir, { recursive: true });
  for (const d of ['bin', 'dist', 'src', 'protos']) if (existsSync(join(REPO, d))) cpSync(join(REPO, d), join(dir, d), { recursive: true });
  for (const f of ['package.json', 'tsconfig.json']) copyFileSync(join(REPO, f), join(dir, f));
  symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'));
  BIN = join(dir, 'bin/kvs.js');
  helpCache = undefined;
  const help = serverHelp();
  if (!/--listen/.test(help)) throw new Error(`the server in the working tree does not start:\n${help.slice(0, 1500)}`);
  return dir;
}

export type KvsDoor = 'native' | 'resp' | 'grpc';

export interface KvsReplica {
  id: number;
  /** Restarted on an unexpected exit; proc.current() is the live process. */
  proc: Supervised;
  endpoints: Partial<Record<KvsDoor, string>>;
}

export interface KvsGroup {
  group: number;
  replicas: KvsReplica[];
}

export interface KvsSystem {
  /** The groups that hold data (shard groups when sharded). */
  groups: KvsGroup[];
  placement?: KvsGroup;
  doors: KvsDoor[];
  /** Every server process, the placement group's included. */
  pids(): number[];
  /** The leader of each data group, in `groups` order (waits for one). */
  leaders(): Promise<KvsReplica[]>;
  /** Sharded: for each key, the index in `groups` of the group owning it. */
  ownerIndex?(keys: Uint8Array[]): number[];
  stop(): Promise<void>;
}

let helpCache: string | undefined;

function serverHelp(): string {
  if (helpCache === undefined) {
    try {
      helpCache = execFileSync(process.execPath, [BIN, 'server', '--help'], { encoding: 'utf8', timeout: 20_000, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      const x = e as { stdout?: string; stderr?: string };
      helpCache = `${x.stdout ?? ''}${x.stderr ?? ''}`;
    }
  }
  return helpCache;
}

/** Which doors this build's `kvs server` offers (by its --help). */
export function availableDoors(): KvsDoor[] {
  return ['native', ...(['resp', 'grpc'] as const).filter((d) => new RegExp(`--${d}\\b`).test(serverHelp()))];
}

export function shardingAvailable(): boolean {
  return /--placement\b/.test(serverHelp());
}

export interface KvsStartOptions {
  dir: string;
  /** Replica id = 10·g + i (i = 1..3); native port basePort + id, RESP +100, gRPC +200. */
  basePort: number;
  /** Unsharded: that many independent groups (default 1). */
  groups?: number;
  /** Sharded: a placement group and this many shard groups. */
  shards?: number;
  replicas?: number;
  /** Extra flags for every replica (e.g. --tick-ms). */
  args?: string[];
  /** Extra node flags (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /**
   * Run the replicas in this many `kvs host` processes (replica i of every group in host i mod N,
   * their stores in one environment per host, as `kvs up --processes N` does) instead of one
   * `kvs server` process each.
   */
  hosts?: number;
  /** Told when a replica dies unexpectedly (and is restarted). */
  onRestart?: (why: string) => void;
}

export async function startKvs(o: KvsStartOptions): Promise<KvsSystem> {
  const doors = availableDoors();
  const nReplicas = o.replicas ?? 3;
  const info = (g: number): GroupInfo => ({
    id: g,
    replicas: Array.from({ length: nReplicas }, (_, i) => ({ id: g * 10 + i + 1, address: `127.0.0.1:${o.basePort + g * 10 + i + 1}` })),
  });
  const hosts = o.hosts ? hostPool(o) : undefined;
  const addr = (id: number, door: KvsDoor): string => `127.0.0.1:${o.basePort + id + (door === 'resp' ? 100 : door === 'grpc' ? 200 : 0)}`;
  const launch = (g: GroupInfo, placement: string[] | undefined): KvsGroup => ({
    group: g.id,
    replicas: g.replicas.map((r, i): KvsReplica => {
      const dataDir = join(o.dir, `g${g.id}-r${r.id}`);
      mkdirSync(dataDir, { recursive: true });
      const endpoints: Partial<Record<KvsDoor, string>> = {};
      for (const d of doors) endpoints[d] = addr(r.id, d);
      const flags = ['--id', String(r.id), '--group', String(g.id), '--listen', r.address, '--data', dataDir];
      flags.push('--replicas', g.replicas.map((x) => `${x.id}=${x.address}`).join(','));
      for (const d of doors) if (d !== 'native') flags.push(`--${d}`, endpoints[d]!);
      if (placement) flags.push('--placement', placement.join(','));
      flags.push(...(o.args ?? []));
      if (hosts) return { id: r.id, endpoints, proc: hosts.run(i, r.id, flags) };
      const args = [...(o.nodeArgs ?? []), BIN, 'server', ...flags];
      const launchOne = (): Managed => start(`kvs-g${g.id}-r${r.id}`, process.execPath, args, { log: join(o.dir, `g${g.id}-r${r.id}.log`), cwd: o.dir });
      return { id: r.id, endpoints, proc: supervise(launchOne, o.onRestart ?? ((why) => console.error(`bench: ${why}`))) };
    }),
  });

  let placement: KvsGroup | undefined;
  let groups: KvsGroup[];
  let ownerIndex: KvsSystem['ownerIndex'];
  if (o.shards) {
    if (!shardingAvailable()) throw new Error('this build of kvs server has no --placement (sharding)');
    placement = launch(info(0), undefined);
    await findLeader(placement);
    const placementAddrs = info(0).replicas.map((r) => r.address);
    const shardInfos = Array.from({ length: o.shards }, (_, i) => info(i + 1));
    const config = await initCluster(placementAddrs, shardInfos);
    groups = shardInfos.map((g) => launch(g, placementAddrs));
    const partitioner = await createPartitioner(config.partitions);
    const index = new Map(groups.map((g, i) => [g.group, i]));
    ownerIndex = (keys) => keys.map((k) => index.get(config.owner[partitioner.partitionOf(k)]!) ?? 0);
  } else {
    groups = Array.from({ length: o.groups ?? 1 }, (_, g) => launch(info(g), undefined));
  }
  const all = [...(placement ? [placement] : []), ...groups];
  const sys: KvsSystem = {
    groups,
    placement,
    doors,
    // Replicas in host processes share pids: each process counted once.
    pids: () => [...new Set(all.flatMap((g) => g.replicas.map((r) => r.proc.current().pid)))],
    leaders: () => Promise.all(groups.map((g) => findLeader(g))),
    ownerIndex,
    stop: async () => void (await Promise.all(hosts ? hosts.stop() : all.flatMap((g) => g.replicas.map((r) => r.proc.stop())))),
  };
  await sys.leaders();
  if (hosts) await balanceHostLeaders(sys, all, hosts, o.hosts!);
  return sys;
}

/**
 * As `kvs up --processes N` does, moves leaderships until no host leads 2 groups more than
 * another, so a run measures the balanced layout (not a random pile-up of leaders on one host).
 */
async function balanceHostLeaders(sys: KvsSystem, all: KvsGroup[], hosts: { hostOf(id: number): number; leadAway(id: number, to: number): void }, count: number): Promise<void> {
  const replicas = all.flatMap((g) => g.replicas.map((r) => ({ id: r.id, group: g.group, address: r.endpoints.native! })));
  const client = new KvsClient({ endpoints: replicas.map((r) => r.address), timeoutMs: 1000 });
  try {
    await waitFor('leaders balanced over the host processes', 30_000, async () => {
      const places = await Promise.all(replicas.map(async (r) => ({ id: r.id, group: r.group, host: hosts.hostOf(r.id), leader: (await client.status(r.address)).role === 'leader', placement: r.group === sys.placement?.group })));
      const move = nextTransfer(places, count);
      if (!move) return true;
      hosts.leadAway(move.from, move.to);
      await new Promise((r) => setTimeout(r, 1000));
      return undefined;
    });
  } finally {
    client.close();
  }
  await sys.leaders();
}

/**
 * `kvs host` processes, started on first use and restarted like a server process (their replicas
 * started again in the new process). A replica's `proc` is its host's.
 */
function hostPool(o: KvsStartOptions): { run(slot: number, id: number, flags: string[]): Supervised; hostOf(id: number): number; leadAway(id: number, to: number): void; stop(): Promise<void>[] } {
  const pool = new Map<number, { proc: Supervised; replicas: { id: number; flags: string[] }[] }>();
  const hostOfId = new Map<number, number>();
  const startReplica = (m: Managed, id: number, flags: string[]): void => {
    if (m.child.connected) m.child.send({ type: 'start', id, argv: flags, label: '' }, () => undefined);
  };
  return {
    run(slot, id, given) {
      const k = slot % o.hosts!;
      // One storage environment per host process, as kvs up gives them.
      const flags = [...given, '--shared-data', join(o.dir, `p${k}`)];
      let host = pool.get(k);
      if (!host) {
        const replicas: { id: number; flags: string[] }[] = [];
        const launchHost = (): Managed => {
          const m = start(`kvs-host${k}`, process.execPath, [...(o.nodeArgs ?? []), BIN, 'host'], { log: join(o.dir, `host${k}.log`), cwd: o.dir, ipc: true });
          for (const r of replicas) startReplica(m, r.id, r.flags);
          return m;
        };
        host = { proc: supervise(launchHost, o.onRestart ?? ((why) => console.error(`bench: ${why}`))), replicas };
        pool.set(k, host);
      }
      host.replicas.push({ id, flags });
      hostOfId.set(id, k);
      startReplica(host.proc.current(), id, flags);
      return host.proc;
    },
    hostOf: (id) => hostOfId.get(id)!,
    leadAway(id, to) {
      const m = pool.get(hostOfId.get(id)!)?.proc.current();
      if (m?.child.connected) m.child.send({ type: 'lead-away', id, to }, () => undefined);
    },
    stop: () => [...pool.values()].map((h) => h.proc.stop()),
  };
}

/** Waits until every replica of the group names the same leader, and returns it. */
export async function findLeader(g: KvsGroup, timeoutMs = 30_000): Promise<KvsReplica> {
  return waitFor(`a leader in group ${g.group}`, timeoutMs, async () => {
    for (const r of g.replicas) {
      const m = r.proc.current();
      if (!m.running() && r.proc.restarts.length > 3) throw new Error(`${m.name} keeps exiting:\n${logTail(m)}`);
    }
    const client = new KvsClient({ endpoints: g.replicas.map((r) => r.endpoints.native!), timeoutMs: 1000 });
    try {
      const st = await Promise.all(g.replicas.map((r) => client.status(r.endpoints.native!)));
      const leaderId = st.find((s) => s.role === 'leader')?.replicaId;
      if (leaderId === undefined || !st.every((s) => s.leaderId === leaderId)) return undefined;
      return g.replicas.find((r) => r.id === leaderId);
    } finally {
      client.close();
    }
  });
}
