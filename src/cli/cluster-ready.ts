// Is a local cluster serving? One answer for `kvs up` (it says "ready" and publishes cluster.json
// only then) and `kvs status`: every replica answers, every group has a leader that all its
// replicas know, every shard replica has applied the cluster configuration, and — checked last, by
// `kvs up` — a write to every shard group goes through every replica's native door (which proves
// the placement replicas route and the relays between groups work).
import { KvsClient } from '../client/client.ts';
import type { Partitioner } from '../partition/index.ts';
import { routeOf, type ClusterConfig } from '../placement/config.ts';
import type { StatusInfo } from '../wire/index.ts';

export interface ReplicaStatus {
  endpoint: string;
  /** From the cluster file: which group the replica belongs to, and whether it is a placement replica. */
  group: number;
  placement: boolean;
  /** undefined: the replica did not answer. */
  status: StatusInfo | undefined;
}

/** What keeps the cluster from serving, as short reasons; empty when nothing (pure). */
export function notServing(replicas: ReplicaStatus[], config: ClusterConfig | undefined): string[] {
  const reasons: string[] = [];
  const silent = replicas.filter((r) => !r.status);
  if (silent.length > 0) reasons.push(`not answering yet: ${silent.map((r) => r.endpoint).join(', ')}`);
  const groups = [...new Set(replicas.map((r) => r.group))].sort((a, b) => a - b);
  for (const g of groups) {
    const members = replicas.filter((r) => r.group === g && r.status);
    const name = g === 0 ? 'placement group' : `shard group ${g}`;
    const leader = members.find((r) => r.status!.role === 'leader')?.status!.replicaId;
    if (leader === undefined) reasons.push(`${name}: no leader yet`);
    else if (members.some((r) => r.status!.leaderId !== leader)) reasons.push(`${name}: not every replica knows its leader (${leader}) yet`);
  }
  if (!config) {
    reasons.push('no cluster configuration yet');
  } else {
    const behind = replicas.filter((r) => !r.placement && r.status && r.status.epoch < config.epoch);
    if (behind.length > 0) reasons.push(`configuration epoch ${config.epoch} not applied yet by replica ${behind.map((r) => r.status!.replicaId).join(', ')}`);
  }
  return reasons;
}

/** A key for each shard group, one that the group owns in `config`. */
export function keyPerGroup(config: ClusterConfig, partitioner: Partitioner, prefix: string): Map<number, string> {
  const keys = new Map<number, string>();
  for (let i = 0; keys.size < config.groups.length && i < 100_000; i++) {
    const key = `${prefix}${i}`;
    const g = routeOf(config, partitioner.partitionOf(Buffer.from(key))).group;
    if (!keys.has(g)) keys.set(g, key);
  }
  return keys;
}

/**
 * Writes (and then deletes) one key of every shard group through every door, each door on its own;
 * returns the failures as reasons. Each request gets the whole `timeoutMs`: transient answers are
 * retried by the client and the relays, so a failure here means the cluster is not serving yet.
 */
export async function writeThroughEveryDoor(doors: string[], keys: Map<number, string>, timeoutMs: number): Promise<string[]> {
  const failures = await Promise.all(
    doors.map(async (door) => {
      const client = new KvsClient({ endpoints: [door], timeoutMs });
      try {
        for (const [g, key] of keys) {
          try {
            await client.put(key, door);
            await client.delete(key);
          } catch (e) {
            return `a write to shard group ${g} through ${door} failed: ${(e as Error).message}`;
          }
        }
        return undefined;
      } finally {
        client.close();
      }
    }),
  );
  return failures.filter((f): f is string => f !== undefined);
}
