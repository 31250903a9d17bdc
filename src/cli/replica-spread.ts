// Keeps each shard group's replicas spread over kvs up's host processes. Adds never unbalance a
// group (a new replica goes to the host with the fewest of its group: SharedHosts.hostOf), but a
// removal can: add a 4th replica (it lands beside one of the group), remove one on another host,
// and one host holds 2 of the 3, so killing it loses the group's quorum. The way back is membership
// changes, one at a time, never below the group's replica count: add a replica on the host lacking
// one, and once it is a voter remove one of a doubled host. (Moving a replica to another process
// instead would leave its store in the old host's environment, DATA/p<k>.) Pure: the steps are
// carried out by `kvs replica` (replica-command.ts), which asks this again after each one.

export interface PlacedReplica {
  id: number;
  group: number;
  /** Index of its host process. */
  host: number;
}

export type SpreadStep = { kind: 'add'; group: number; host: number } | { kind: 'remove'; group: number; id: number };

/** Replicas of `group` on each of `hosts` host processes. */
export function perHost(replicas: PlacedReplica[], group: number, hosts: number): number[] {
  const counts = new Array<number>(hosts).fill(0);
  for (const r of replicas) if (r.group === group && r.host >= 0 && r.host < hosts) counts[r.host]!++;
  return counts;
}

/** Whether no host holds 2 more replicas of `group` than another (at most ceil(R/hosts) each). */
export function isSpread(replicas: PlacedReplica[], group: number, hosts: number): boolean {
  if (hosts < 2) return true;
  const c = perHost(replicas, group, hosts);
  return Math.max(...c) - Math.min(...c) <= 1;
}

/**
 * The next membership step toward spreading `group` over `hosts` processes while keeping at least
 * `target` replicas (its count before the rebalance began): above the target, remove one replica
 * from a host with the most (the highest id there: the newest); at the target and not spread, add
 * one on a host with the fewest. Undefined: nothing to do. Each add-and-remove pair moves one
 * replica from a fullest host to an emptiest one, so a group of R replicas needs at most R pairs.
 */
export function nextSpreadStep(replicas: PlacedReplica[], group: number, hosts: number, target: number): SpreadStep | undefined {
  if (hosts < 2) return undefined;
  const mine = replicas.filter((r) => r.group === group && r.host >= 0 && r.host < hosts);
  const c = perHost(mine, group, hosts);
  const most = Math.max(...c);
  const least = Math.min(...c);
  if (mine.length > target) {
    const from = c.indexOf(most);
    const id = Math.max(...mine.filter((r) => r.host === from).map((r) => r.id));
    return { kind: 'remove', group, id };
  }
  if (most - least <= 1) return undefined;
  return { kind: 'add', group, host: c.indexOf(least) };
}
