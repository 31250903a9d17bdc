// The systems `make bench-compare` starts, each seen through one protocol: where its writes and
// reads go (re-resolved before every run, in case leadership moved) and which pids are its servers.
//
// Read routing: linearizable reads go where each system serves them best, measured on this machine
// (docs/benchmarks.md): etcd spread over its three members; this store to the leader, since a
// follower's ReadIndex round trip costs more than it spreads.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Protocol } from '../drivers/index.ts';
import type { DriverTarget } from '../load/driver.ts';
import type { EtcdCluster } from '../systems/etcd.ts';
import { KeySpace } from '../load/keys.ts';
import type { KvsDoor, KvsSystem } from '../systems/kvs.ts';
import type { RedisServer } from '../systems/redis.ts';

const exec = promisify(execFile);

export interface BenchSystem {
  name: string;
  protocol: Protocol;
  pids(): number[];
  target(): Promise<DriverTarget>;
  /** host:port for redis-benchmark (RESP systems only). */
  respAddress?(): Promise<string>;
  /** Generator processes for this system. */
  procs: number;
  /** Connections per endpoint: RESP answers in order, so its clients pool connections. */
  conns: number;
}

/** `space` is needed for a sharded system: keys are routed to the group that owns them. */
export function kvsSystem(name: string, kvs: KvsSystem, door: KvsDoor, space?: KeySpace): BenchSystem {
  const protocol: Protocol = door === 'native' ? 'native' : door === 'resp' ? 'resp' : 'kvs-grpc';
  const keyGroups = space && kvs.ownerIndex ? kvs.ownerIndex(space.keyViews()) : undefined;
  return {
    name,
    protocol,
    procs: 1,
    conns: 1,
    pids: () => kvs.pids(),
    target: async () => {
      const leaders = await kvs.leaders();
      const at = leaders.map((l) => l.endpoints[door]!);
      // One group: everything to its leader. Several: each key to its group's leader.
      if (leaders.length === 1) return { write: at, read: at };
      return { write: at, read: at, groups: at.map((a) => ({ write: [a], read: [a] })), keyGroups };
    },
    respAddress: door === 'resp' ? async () => (await kvs.leaders())[0]!.endpoints.resp! : undefined,
  };
}

export function etcdSystem(etcd: EtcdCluster): BenchSystem {
  return {
    name: 'etcd',
    protocol: 'etcd',
    procs: 1,
    conns: 1,
    pids: () => etcd.pids(),
    target: async () => ({ write: [await etcd.leader()], read: etcd.clients }),
  };
}

export function redisSystem(name: string, r: RedisServer): BenchSystem {
  return {
    name,
    protocol: 'resp',
    procs: 1,
    conns: 1,
    pids: () => [r.proc.pid],
    target: async () => ({ write: [r.address], read: [r.address] }),
    respAddress: async () => r.address,
  };
}

export async function gitCommit(): Promise<string> {
  try {
    const sha = (await exec('git', ['rev-parse', '--short', 'HEAD'])).stdout.trim();
    const dirty = (await exec('git', ['status', '--porcelain', '--untracked-files=no'])).stdout.trim() !== '';
    return dirty ? `${sha}-dirty` : sha;
  } catch {
    return 'unknown';
  }
}
