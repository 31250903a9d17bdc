// Where `kvs up` puts each replica of a local cluster: ids, ports, data directories. Pure.
//   placement group 0: replica ids 1..R;  shard group g: ids g*100+1..g*100+R
//   the n-th replica started (from 0) listens on native base+n, RESP base+100+n, gRPC base+200+n,
//   HTTP base+300+n (WebSocket at /v1/ws on the HTTP port) — for n < 100; replicas 100..199 use the
//   same pattern from base+400, and so on (a block of 400 ports per 100 replicas), so the ports of a
//   small cluster never move.
import { join } from 'node:path';
import type { ClusterReplica } from './cluster-file.ts';

export const DOOR_PORT_OFFSETS = { resp: 100, grpc: 200, http: 300 } as const;
/** Replicas per block of ports (native, RESP, gRPC and HTTP ranges of this many ports each). */
const BLOCK = 100;
/** Replicas a local cluster can hold: 64 shard groups of 3 and the placement group, with room. */
export const MAX_LOCAL_REPLICAS = 300;
/** Ports from the base port to the last one a full local cluster may use. */
export const LOCAL_PORT_SPAN = (MAX_LOCAL_REPLICAS / BLOCK) * 4 * BLOCK;

export function endpointsFor(base: number, n: number): ClusterReplica['endpoints'] {
  const first = base + Math.floor(n / BLOCK) * 4 * BLOCK + (n % BLOCK);
  const at = (offset: number): string => `127.0.0.1:${first + offset}`;
  const http = at(DOOR_PORT_OFFSETS.http);
  return { native: at(0), resp: at(DOOR_PORT_OFFSETS.resp), grpc: at(DOOR_PORT_OFFSETS.grpc), http, ws: `ws://${http}/v1/ws` };
}

/** The replicas of group `g` (0 = placement), numbered after the `existing` ones. */
export function groupReplicas(dataDir: string, base: number, g: number, replicas: number, existing: number, role: 'placement' | 'shard'): ClusterReplica[] {
  if (existing + replicas > MAX_LOCAL_REPLICAS) throw new Error(`a local cluster holds at most ${MAX_LOCAL_REPLICAS} replicas`);
  return Array.from({ length: replicas }, (_, j) => {
    const id = g === 0 ? j + 1 : g * 100 + j + 1;
    return { id, group: g, role, pid: 0, dataDir: join(dataDir, `g${g}-r${id}`), endpoints: endpointsFor(base, existing + j) };
  });
}

/** Placement group plus `shards` shard groups of `replicas` each. */
export function shardedLayout(dataDir: string, base: number, shards: number, replicas: number): ClusterReplica[] {
  const out = groupReplicas(dataDir, base, 0, replicas, 0, 'placement');
  for (let g = 1; g <= shards; g++) out.push(...groupReplicas(dataDir, base, g, replicas, out.length, 'shard'));
  return out;
}

/**
 * A replica added to group `g` of a running local cluster: the first port slot no replica uses
 * (slots of removed replicas are reused), and a new id whose data directory does not exist yet (a
 * removed replica's directory holds a log in which it is still a voter: never start from it).
 */
export function addedReplica(dataDir: string, replicas: ClusterReplica[], g: number, exists: (dir: string) => boolean): ClusterReplica {
  const base = basePortOf(replicas);
  const used = new Set(replicas.map((r) => r.endpoints.native));
  let slot = 0;
  while (used.has(endpointsFor(base, slot).native)) slot++;
  if (slot >= MAX_LOCAL_REPLICAS) throw new Error(`a local cluster holds at most ${MAX_LOCAL_REPLICAS} replicas`);
  const ids = new Set(replicas.map((r) => r.id));
  let id = Math.max(g * 100, ...replicas.filter((r) => r.group === g).map((r) => r.id)) + 1;
  while (ids.has(id) || exists(join(dataDir, `g${g}-r${id}`))) id++;
  return { id, group: g, role: 'shard', join: true, pid: 0, dataDir: join(dataDir, `g${g}-r${id}`), endpoints: endpointsFor(base, slot) };
}

/**
 * The replicas of shard group `g` added to a running local cluster: in the first port slots no
 * replica uses, as addedReplica places one. Not after the count of replicas: once a replica was
 * removed that slot lies below the highest in use (an outside review's new group got a running
 * group-2 replica's ports).
 */
export function addedGroup(dataDir: string, replicas: ClusterReplica[], g: number, count: number): ClusterReplica[] {
  const base = basePortOf(replicas);
  const used = new Set(replicas.map((r) => r.endpoints.native));
  const slots: number[] = [];
  for (let slot = 0; slots.length < count; slot++) {
    if (slot >= MAX_LOCAL_REPLICAS) throw new Error(`a local cluster holds at most ${MAX_LOCAL_REPLICAS} replicas`);
    if (!used.has(endpointsFor(base, slot).native)) slots.push(slot);
  }
  return slots.map((slot, j) => {
    const id = g * 100 + j + 1;
    return { id, group: g, role: 'shard' as const, pid: 0, dataDir: join(dataDir, `g${g}-r${id}`), endpoints: endpointsFor(base, slot) };
  });
}

/** The base port a cluster file was laid out from (its first replica's native port). */
export function basePortOf(replicas: ClusterReplica[]): number {
  return Math.min(...replicas.map((r) => Number(r.endpoints.native.split(':').pop())));
}

/**
 * The ports from `base` on that a local cluster may use and that lie in the kernel's ephemeral
 * range `[lo, hi]` (net.ipv4.ip_local_port_range), or undefined. Any outgoing connection on the
 * machine (a client's, a replica link's) may take such a port as its local port; a replica
 * restarted while one does cannot listen there (EADDRINUSE) and keeps failing its restarts for as
 * long as that connection lives.
 */
export function ephemeralOverlap(base: number, range: readonly [number, number] | undefined): [number, number] | undefined {
  if (!range) return undefined;
  const from = Math.max(base, range[0]);
  const to = Math.min(base + LOCAL_PORT_SPAN - 1, range[1]);
  return from <= to ? [from, to] : undefined;
}

/** Parses /proc/sys/net/ipv4/ip_local_port_range ("32768\t60999"); undefined if it is not that. */
export function parsePortRange(text: string): [number, number] | undefined {
  const m = /^\s*(\d+)\s+(\d+)\s*$/.exec(text);
  if (!m) return undefined;
  const lo = Number(m[1]);
  const hi = Number(m[2]);
  return lo <= hi && hi <= 65535 ? [lo, hi] : undefined;
}
