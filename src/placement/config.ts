// The cluster configuration the placement group stores: shard groups and their replicas, which group
// owns each partition, and the hand-offs still in progress. Pure: every node computes the same
// thing from the same input. Every change bumps the epoch; a new reshard may only start once the
// previous one's hand-offs are all complete, so a partition is never part of two moves at once.
import { addressProblem } from '../address/address.ts';
import { assignOwners, diff, DEFAULT_LOAD_FACTOR, DEFAULT_PARTITIONS, MAX_PARTITIONS, type Move, type Xxh64 } from '../partition/index.ts';

export interface ReplicaInfo {
  id: number;
  /** host:port of its native door. */
  address: string;
}

export interface GroupInfo {
  id: number;
  replicas: ReplicaInfo[];
}

export interface ClusterConfig {
  epoch: number;
  partitions: number;
  loadFactor: number;
  /** Shard groups, by ascending id. */
  groups: GroupInfo[];
  /** owner[p]: the group that owns (or is receiving) partition p. */
  owner: number[];
  /** Hand-offs in progress: `from` still holds the data until the move is removed from here. */
  moves: Move[];
  /**
   * Groups the last reshard removed that still hand partitions off: each is released once it has.
   * Recorded because "owns nothing" cannot tell them from a group the reshard kept or added that
   * got no partition (bounded-load hashing may give a group none), which must stay. Absent in
   * configurations written before 2026-12-07: there every group owning nothing is released.
   */
  leaving?: number[];
}

/** The key of the configuration in the placement group's key space. */
export const CONFIG_KEY = 'placement/config';

export function initialConfig(h64: Xxh64, groups: GroupInfo[], partitions = DEFAULT_PARTITIONS, loadFactor = DEFAULT_LOAD_FACTOR): ClusterConfig {
  const sorted = sortGroups(groups);
  const owner = assignOwners(h64, { partitions, groups: sorted.map((g) => g.id), loadFactor });
  return { epoch: 1, partitions, loadFactor, groups: sorted, owner: [...owner], moves: [] };
}

/**
 * A new set of shard groups: owners recomputed, and every partition whose owner changes moves. A
 * group `c` lists already keeps `c`'s replicas: `groups` gives the lists of new groups only. The
 * caller read its configuration earlier (and waited for new groups' leaders meanwhile); a list
 * from that read would undo a `kvs replica add` or `remove` made since, leaving a voter unlisted
 * (an outside review lost a 4-voter group's quorum so with 3 of its voters up).
 */
export function reshard(h64: Xxh64, c: ClusterConfig, groups: GroupInfo[]): ClusterConfig {
  if (c.moves.length > 0) throw new Error(`a reshard is still in progress (${c.moves.length} partitions moving)`);
  if (groups.length === 0) throw new Error('at least one shard group is required');
  const sorted = sortGroups(groups.map((g) => c.groups.find((x) => x.id === g.id) ?? g));
  const owner = assignOwners(h64, { partitions: c.partitions, groups: sorted.map((g) => g.id), loadFactor: c.loadFactor });
  const moves = diff(Uint32Array.from(c.owner), owner);
  // Groups being removed stay listed until they have handed everything off.
  const leaving = c.groups.filter((g) => !sorted.some((s) => s.id === g.id) && moves.some((m) => m.from === g.id));
  return { ...c, epoch: c.epoch + 1, groups: sortGroups([...sorted, ...leaving]), owner: [...owner], moves, leaving: leaving.map((g) => g.id) };
}

/** The destination has the data and serves it: the move is over (the source may now drop it). */
export function completeMoves(c: ClusterConfig, partitions: readonly number[]): ClusterConfig {
  const done = new Set(partitions);
  const moves = c.moves.filter((m) => !done.has(m.partition));
  if (moves.length === c.moves.length) return c;
  // A removed group that hands nothing off any more is released from the configuration; a group
  // the reshard kept or added stays, even owning nothing (an outside test saw the operator delete
  // and re-create such groups, 10 -> 12 shards of 16 partitions).
  const releasable = (id: number): boolean => (c.leaving ? c.leaving.includes(id) : true);
  const groups = c.groups.filter((g) => c.owner.includes(g.id) || moves.some((m) => m.from === g.id) || !releasable(g.id));
  const leaving = c.leaving?.filter((id) => groups.some((g) => g.id === id));
  return { ...c, epoch: c.epoch + 1, moves, groups, ...(leaving ? { leaving } : {}) };
}

/** Where a request for partition p goes now: the source while a move is pending (it serves until frozen). */
export function routeOf(c: ClusterConfig, partition: number): { group: number; next?: number } {
  const m = c.moves.find((x) => x.partition === partition);
  if (m) return { group: m.from, next: m.to };
  return { group: c.owner[partition]! };
}

export function groupOf(c: ClusterConfig, id: number): GroupInfo | undefined {
  return c.groups.find((g) => g.id === id);
}

export function encodeConfig(c: ClusterConfig): Uint8Array {
  return Buffer.from(JSON.stringify(c), 'utf8');
}

export function decodeConfig(b: Uint8Array): ClusterConfig {
  const c = JSON.parse(Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8')) as ClusterConfig;
  if (!Number.isInteger(c.epoch) || !Array.isArray(c.groups) || !Array.isArray(c.owner) || c.owner.length !== c.partitions || !Array.isArray(c.moves)) {
    throw new Error('malformed cluster configuration');
  }
  return c;
}

/**
 * Why `next` may not replace `prev` (undefined when it may): a configuration written to the
 * placement group must be whole and consistent (every partition owned by a listed group, every
 * move ending at its partition's owner) and must come after the one it replaces (a higher epoch),
 * since every watcher adopts the highest epoch it sees. `prev` is undefined for the first one.
 */
export function configChangeProblem(prev: ClusterConfig | undefined, next: unknown): string | undefined {
  const problem = shapeProblem(next);
  if (problem) return problem;
  const c = next as ClusterConfig;
  if (prev && Number.isSafeInteger(prev.epoch) && !(c.epoch > prev.epoch)) return `epoch ${c.epoch} does not follow the current epoch ${prev.epoch}`;
  return undefined;
}

function shapeProblem(x: unknown): string | undefined {
  if (typeof x !== 'object' || x === null) return 'not a JSON object';
  const c = x as Partial<Record<keyof ClusterConfig, unknown>>;
  if (!Number.isSafeInteger(c.epoch) || (c.epoch as number) < 1) return 'epoch must be a positive integer';
  const partitions = c.partitions;
  if (!Number.isInteger(partitions) || (partitions as number) < 1 || (partitions as number) > MAX_PARTITIONS) return `partitions must be an integer in [1, ${MAX_PARTITIONS}]`;
  if (typeof c.loadFactor !== 'number' || !Number.isFinite(c.loadFactor) || c.loadFactor < 1) return 'loadFactor must be a number >= 1';
  if (!Array.isArray(c.groups) || c.groups.length === 0) return 'groups must be a non-empty array';
  const ids = new Set<number>();
  for (const g of c.groups as unknown[]) {
    const groupProblem = groupShapeProblem(g);
    if (groupProblem) return groupProblem;
    const id = (g as GroupInfo).id;
    if (ids.has(id)) return `group ${id} is listed twice`;
    ids.add(id);
  }
  if (!Array.isArray(c.owner) || c.owner.length !== partitions) return 'owner must list one group per partition';
  const owner = c.owner as unknown[];
  for (const o of owner) if (!ids.has(o as number)) return `owner names ${JSON.stringify(o)}, which is not a listed group`;
  if (!Array.isArray(c.moves)) return 'moves must be an array';
  const moving = new Set<number>();
  for (const m of c.moves as unknown[]) {
    const mv = m as Partial<Move> | null;
    if (typeof mv !== 'object' || mv === null || !Number.isInteger(mv.partition) || mv.partition! < 0 || mv.partition! >= (partitions as number)) return 'a move names no partition';
    if (moving.has(mv.partition!)) return `partition ${mv.partition} moves twice`;
    moving.add(mv.partition!);
    if (!ids.has(mv.from as number) || mv.to !== owner[mv.partition!] || mv.from === mv.to) return `the move of partition ${mv.partition} must go from a listed group to its owner`;
  }
  // Not checked against `groups`: a replica of an earlier version completing a move keeps the
  // field as it was while releasing the group (completeMoves drops such ids again).
  if (c.leaving !== undefined && (!Array.isArray(c.leaving) || !c.leaving.every((id) => Number.isSafeInteger(id)))) return 'leaving must be an array of group ids';
  return undefined;
}

function groupShapeProblem(g: unknown): string | undefined {
  if (typeof g !== 'object' || g === null) return 'a group is not an object';
  const { id, replicas } = g as Partial<GroupInfo>;
  if (!Number.isSafeInteger(id) || id! < 0) return 'a group id must be a non-negative integer';
  if (!Array.isArray(replicas) || replicas.length === 0) return `group ${id} lists no replicas`;
  for (const r of replicas as unknown[]) {
    const { id: rid, address } = (r ?? {}) as Partial<ReplicaInfo>;
    if (!Number.isSafeInteger(rid) || rid! < 1 || typeof address !== 'string' || address.length === 0) return `group ${id} lists a replica without a positive id and an address`;
    const problem = addressProblem(address);
    if (problem) return `group ${id} replica ${rid}: ${problem}`;
  }
  return undefined;
}

function sortGroups(groups: GroupInfo[]): GroupInfo[] {
  return [...groups].sort((a, b) => a.id - b.id);
}

/**
 * Group `group` with replica `r` listed (appended, or its address updated): a membership change
 * made visible to routers and clients. Returns `c` itself when nothing changes (no epoch bump).
 */
export function withReplica(c: ClusterConfig, group: number, r: ReplicaInfo): ClusterConfig {
  const g = groupOf(c, group);
  if (!g) throw new Error(`group ${group} is not in the configuration`);
  const at = g.replicas.findIndex((x) => x.id === r.id);
  if (at >= 0 && g.replicas[at]!.address === r.address) return c;
  const replicas = at >= 0 ? g.replicas.map((x, i) => (i === at ? { ...r } : x)) : [...g.replicas, { ...r }];
  return replaceGroup(c, { ...g, replicas });
}

/** Group `group` without replica `id`; `c` itself if it was not listed. Never empties a group. */
export function withoutReplica(c: ClusterConfig, group: number, id: number): ClusterConfig {
  const g = groupOf(c, group);
  if (!g) throw new Error(`group ${group} is not in the configuration`);
  if (!g.replicas.some((x) => x.id === id)) return c;
  if (g.replicas.length === 1) throw new Error(`replica ${id} is the last one of group ${group}`);
  return replaceGroup(c, { ...g, replicas: g.replicas.filter((x) => x.id !== id) });
}

function replaceGroup(c: ClusterConfig, g: GroupInfo): ClusterConfig {
  return { ...c, epoch: c.epoch + 1, groups: c.groups.map((x) => (x.id === g.id ? g : x)) };
}
