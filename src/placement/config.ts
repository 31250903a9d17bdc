// The cluster configuration the placement group stores: shard groups and their replicas, which group
// owns each partition, and the hand-offs still in progress. Pure: every node computes the same
// thing from the same input. Every change bumps the epoch; a new reshard may only start once the
// previous one's hand-offs are all complete, so a partition is never part of two moves at once.
import { assignOwners, diff, DEFAULT_LOAD_FACTOR, DEFAULT_PARTITIONS, type Move, type Xxh64 } from '../partition/index.ts';

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
}

/** The key of the configuration in the placement group's key space. */
export const CONFIG_KEY = 'placement/config';

export function initialConfig(h64: Xxh64, groups: GroupInfo[], partitions = DEFAULT_PARTITIONS, loadFactor = DEFAULT_LOAD_FACTOR): ClusterConfig {
  const sorted = sortGroups(groups);
  const owner = assignOwners(h64, { partitions, groups: sorted.map((g) => g.id), loadFactor });
  return { epoch: 1, partitions, loadFactor, groups: sorted, owner: [...owner], moves: [] };
}

/** A new set of shard groups: owners recomputed, and every partition whose owner changes moves. */
export function reshard(h64: Xxh64, c: ClusterConfig, groups: GroupInfo[]): ClusterConfig {
  if (c.moves.length > 0) throw new Error(`a reshard is still in progress (${c.moves.length} partitions moving)`);
  if (groups.length === 0) throw new Error('at least one shard group is required');
  const sorted = sortGroups(groups);
  const owner = assignOwners(h64, { partitions: c.partitions, groups: sorted.map((g) => g.id), loadFactor: c.loadFactor });
  const moves = diff(Uint32Array.from(c.owner), owner);
  // Groups being removed stay listed until they have handed everything off.
  const leaving = c.groups.filter((g) => !sorted.some((s) => s.id === g.id) && moves.some((m) => m.from === g.id));
  return { ...c, epoch: c.epoch + 1, groups: sortGroups([...sorted, ...leaving]), owner: [...owner], moves };
}

/** The destination has the data and serves it: the move is over (the source may now drop it). */
export function completeMoves(c: ClusterConfig, partitions: readonly number[]): ClusterConfig {
  const done = new Set(partitions);
  const moves = c.moves.filter((m) => !done.has(m.partition));
  if (moves.length === c.moves.length) return c;
  // A group that owns nothing and hands nothing off any more is released from the configuration.
  const groups = c.groups.filter((g) => c.owner.includes(g.id) || moves.some((m) => m.from === g.id));
  return { ...c, epoch: c.epoch + 1, moves, groups };
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
