// The replicas of other groups that run in this process (`kvs host`), per cluster. A request that
// shard routing sends to a group whose leader runs here is handed to that replica directly —
// what the leader would do with it after a TCP hop (a FORWARD with hops 1) — so a process holding
// one replica of every group serves a key whose leader it holds without a network round trip.
// A follower here takes only linearizable reads: it serves them from its own state after a
// ReadIndex to its leader, which reads arriving together share (Replica.readBarrier), where the
// remote path would carry each read and its value over TCP. A write it would only relay.
import type { Request, Response } from '../wire/index.ts';
import type { RawRequest } from './router.ts';

export interface LocalGroupReplica {
  readonly group: number;
  isLeader(): boolean;
  /** Whether it knows a leader of its group (a follower that knows none cannot confirm a read). */
  knowsLeader(): boolean;
  /** The replica's group-local request path (Router.local). */
  local(req: Request, raw: RawRequest, deadline: number): Promise<Response>;
}

/**
 * By cluster: the key is the process's shared placement watcher of that cluster (one per set of
 * placement endpoints), so two clusters in one process (tests) never serve each other's groups.
 */
const byCluster = new WeakMap<object, Map<number, Set<LocalGroupReplica>>>();

/** Makes `r` reachable for requests routed to its group in `cluster`; returns its removal. */
export function hostReplica(cluster: object, r: LocalGroupReplica): () => void {
  let groups = byCluster.get(cluster);
  if (!groups) byCluster.set(cluster, (groups = new Map()));
  let set = groups.get(r.group);
  if (!set) groups.set(r.group, (set = new Set()));
  set.add(r);
  return () => void set.delete(r);
}

/** A replica of `group` in this process that leads it now, if any. */
export function localLeader(cluster: object, group: number): LocalGroupReplica | undefined {
  return hostedWhere(cluster, group, (r) => r.isLeader());
}

/** A replica of `group` in this process that follows a leader it knows, if any. */
export function localFollower(cluster: object, group: number): LocalGroupReplica | undefined {
  return hostedWhere(cluster, group, (r) => !r.isLeader() && r.knowsLeader());
}

function hostedWhere(cluster: object, group: number, wanted: (r: LocalGroupReplica) => boolean): LocalGroupReplica | undefined {
  for (const r of byCluster.get(cluster)?.get(group) ?? []) if (wanted(r)) return r;
  return undefined;
}
