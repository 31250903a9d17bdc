// Is a local cluster serving? One answer for `kvs up` (it says "ready" and publishes cluster.json
// only then) and `kvs status`. A group serves when a majority of its replicas answer and know the
// same leader; the cluster serves when every group does, every shard replica that answers has
// applied the cluster configuration, and — checked last, by `kvs up` — a write to every shard group
// goes through the native door of every replica that serves (which proves the placement replicas
// route and the relays between groups work). Replicas that do not serve while their groups do
// (a store that fails at every start, a replica still starting) make the cluster degraded, not
// down: `kvs up` accepts that once they failed a start or quorum has served for a grace period.
import { KvsClient } from '../client/client.ts';
import type { Partitioner } from '../partition/index.ts';
import { routeOf, type ClusterConfig } from '../placement/config.ts';
import type { StatusInfo } from '../wire/index.ts';

export interface ReplicaStatus {
  /** From the cluster file: the replica's id and endpoint, its group, whether it is a placement replica. */
  id: number;
  endpoint: string;
  group: number;
  placement: boolean;
  /** undefined: the replica did not answer. */
  status: StatusInfo | undefined;
}

/** A replica that does not serve, and why, in words. */
export interface DownReplica {
  id: number;
  endpoint: string;
  why: string;
}

export interface Verdict {
  /** What keeps a group (or the configuration) from serving, as short reasons; empty when every group serves. */
  reasons: string[];
  /** Replicas that do not serve (silent, or not knowing their group's leader), whether or not their group serves. */
  down: DownReplica[];
}

/** "replica 5 at 127.0.0.1:7005 not answering" */
export function describeDown(d: DownReplica): string {
  return `replica ${d.id} at ${d.endpoint} ${d.why}`;
}

/**
 * What keeps the cluster from serving (empty `reasons`: every group serves from a majority), and
 * which replicas do not serve (pure).
 */
export function notServing(replicas: ReplicaStatus[], config: ClusterConfig | undefined): Verdict {
  const reasons: string[] = [];
  const down: DownReplica[] = [];
  const groups = [...new Set(replicas.map((r) => r.group))].sort((a, b) => a - b);
  for (const g of groups) {
    const all = replicas.filter((r) => r.group === g);
    const answering = all.filter((r) => r.status);
    const name = g === 0 ? 'placement group' : `shard group ${g}`;
    const majority = Math.floor(all.length / 2) + 1;
    // After an election an old leader may still say so for a moment: the newest term's counts.
    const leader = answering
      .filter((r) => r.status!.role === 'leader')
      .sort((a, b) => b.status!.term - a.status!.term)[0]?.status!.replicaId;
    for (const r of all) {
      if (!r.status) down.push({ id: r.id, endpoint: r.endpoint, why: 'not answering' });
      else if (leader !== undefined && r.status.leaderId !== leader) down.push({ id: r.id, endpoint: r.endpoint, why: `does not know its leader (${leader}) yet` });
    }
    const knowing = answering.filter((r) => leader !== undefined && r.status!.leaderId === leader).length;
    if (answering.length < majority) reasons.push(`${name}: only ${answering.length} of ${all.length} replicas answer`);
    else if (leader === undefined) reasons.push(`${name}: no leader yet`);
    else if (knowing < majority) reasons.push(`${name}: leader ${leader} known by ${knowing} of ${all.length} replicas, not yet a majority`);
  }
  if (!config) {
    reasons.push('no cluster configuration yet');
  } else {
    const behind = replicas.filter((r) => !r.placement && r.status && r.status.epoch < config.epoch);
    if (behind.length > 0) reasons.push(`configuration epoch ${config.epoch} not applied yet by replica ${behind.map((r) => r.status!.replicaId).join(', ')}`);
  }
  return { reasons, down };
}

/**
 * Replicas that do not serve are not waited for once they failed a start (exited since `kvs up`
 * launched them) or every group has served from a quorum for this long: a healthy start brings
 * every replica up within seconds, a replica that cannot start must not keep the cluster from
 * ever being ready.
 */
export const DEGRADED_GRACE_MS = 10_000;

export interface StartState {
  now: number;
  /** Since when `notServing` has found no reason (every group serves from a quorum); undefined: it does not. */
  quorumSince: number | undefined;
  /** Whether the replica has exited (failed to start, or crashed) since `kvs up` launched it. */
  failedStart: (id: number) => boolean;
  graceMs?: number;
}

export type StartDecision =
  /** Ready once the write through every serving door passes; `degraded`: who does not serve. */
  | { ready: true; degraded: DownReplica[] }
  | { ready: false; waiting: string[] };

/** Whether `kvs up` may check the doors and then say ready, possibly degraded (pure). */
export function startDecision(v: Verdict, s: StartState): StartDecision {
  if (v.reasons.length > 0) return { ready: false, waiting: [...v.reasons, ...v.down.map(describeDown)] };
  const grace = s.graceMs ?? DEGRADED_GRACE_MS;
  const pastGrace = s.quorumSince !== undefined && s.now - s.quorumSince >= grace;
  const waitedFor = v.down.filter((d) => !pastGrace && !s.failedStart(d.id));
  if (waitedFor.length > 0) return { ready: false, waiting: waitedFor.map(describeDown) };
  return { ready: true, degraded: v.down };
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
