// A replica's identity on Kubernetes, from its StatefulSet pod name (docs/kubernetes.md). Pure.
//
// A pod `<set>-<ordinal>` of StatefulSet `<set>` (whose headless Service has the same name) is:
//   group    0 for the set `placement`, N+1 for the set `shard-N`
//   id       ordinal+1 in the placement group, group*100 + ordinal+1 in a shard group (as `kvs up`)
//   peers    `<set>-<m>.<set>.<dns-suffix>:<port>` for every ordinal m < group size: the stable
//            DNS names the headless Service gives the pods (they may not resolve yet: replica links
//            retry until they do)
// and a shard replica finds the placement group the same way from the placement set's name.
// Settings given explicitly (--id, --group, --replicas, --placement) win over derived ones.
import type { GroupInfo } from '../placement/config.ts';
import { ConfigError } from './config.ts';

export const PLACEMENT_SET = 'placement';
const SHARD_SET = /^shard-(\d+)$/;

/** The Raft group id a StatefulSet's name stands for. */
export function groupOfSet(set: string): number {
  if (set === PLACEMENT_SET) return 0;
  const m = SHARD_SET.exec(set);
  if (!m) throw new ConfigError(`StatefulSet name "${set}" must be "${PLACEMENT_SET}" or "shard-N" (N >= 0)`);
  return Number(m[1]) + 1;
}

/** Replica id of the pod with this ordinal in a group (the numbering `kvs up` uses). */
export function replicaIdOf(group: number, ordinal: number): number {
  return group === 0 ? ordinal + 1 : group * 100 + ordinal + 1;
}

/** `shard-1-2` → { set: 'shard-1', ordinal: 2 }. */
export function parsePodName(pod: string): { set: string; ordinal: number } {
  const m = /^(.+)-(\d+)$/.exec(pod);
  if (!m) throw new ConfigError(`pod name "${pod}" is not "<statefulset>-<ordinal>"`);
  return { set: m[1]!, ordinal: Number(m[2]) };
}

/** `<set>-<m>.<set>.<suffix>:<port>`: the pod's stable DNS name under its headless Service. */
export function podAddress(set: string, ordinal: number, dnsSuffix: string, port: number): string {
  return `${set}-${ordinal}.${set}.${dnsSuffix}:${port}`;
}

/** Every replica of the group a StatefulSet of `size` pods holds. */
export function setReplicas(set: string, size: number, dnsSuffix: string, port: number): GroupInfo {
  const group = groupOfSet(set);
  return {
    id: group,
    replicas: Array.from({ length: size }, (_, m) => ({ id: replicaIdOf(group, m), address: podAddress(set, m, dnsSuffix, port) })),
  };
}

/** `shard-0,shard-1` → the shard groups a placement replica writes into the first configuration. */
export function bootstrapGroups(list: string, size: number, dnsSuffix: string, port: number): GroupInfo[] {
  const sets = list.split(',').map((s) => s.trim()).filter((s) => s !== '');
  return sets.map((set) => {
    if (set === PLACEMENT_SET) throw new ConfigError('--bootstrap-groups lists shard groups ("shard-N"), not the placement group');
    return setReplicas(set, size, dnsSuffix, port);
  });
}

export interface PodSettings {
  podName: string;
  dnsSuffix: string;
  groupSize: number;
  /** host:port this replica listens on: its port is every replica's port. */
  listen: string;
  /** The placement StatefulSet's name, for a shard replica ('' or absent: none). */
  placementSet?: string;
}

/** The server settings a pod name stands for, as `loadConfig` reads them (`1=host:port,...`). */
export function podDefaults(s: PodSettings): { id: number; group: number; replicas: string; placement?: string } {
  const { set, ordinal } = parsePodName(s.podName);
  if (ordinal >= s.groupSize) throw new ConfigError(`pod ${s.podName} has ordinal ${ordinal}, but the group size is ${s.groupSize}`);
  const port = portOf(s.listen);
  const group = setReplicas(set, s.groupSize, s.dnsSuffix, port);
  const out: { id: number; group: number; replicas: string; placement?: string } = {
    id: replicaIdOf(group.id, ordinal),
    group: group.id,
    replicas: group.replicas.map((r) => `${r.id}=${r.address}`).join(','),
  };
  if (s.placementSet) {
    if (group.id === 0) throw new ConfigError('a placement replica takes no --placement-set');
    out.placement = setReplicas(s.placementSet, s.groupSize, s.dnsSuffix, port).replicas.map((r) => r.address).join(',');
  }
  return out;
}

function portOf(listen: string): number {
  const port = Number(listen.slice(listen.lastIndexOf(':') + 1));
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ConfigError(`--listen "${listen}" has no port`);
  return port;
}

type Pick = (name: string, flag?: string) => unknown;

/**
 * Wraps the config's setting lookup: with `--pod-name`, id, group, replicas and placement default
 * to what the pod name stands for, and `initialGroups` holds the shard groups `--bootstrap-groups`
 * names (a placement replica writes them as the first configuration). The one line `loadConfig` needs.
 */
export function withPodIdentity(pick: Pick): Pick {
  const podName = pick('podName', 'pod-name');
  if (podName === undefined || podName === null || podName === '') return pick;
  const text = (name: string, flag: string, fallback?: string): string => {
    const v = pick(name, flag) ?? fallback;
    if (v === undefined || v === null || v === '') throw new ConfigError(`--pod-name needs --${flag}`);
    return String(v);
  };
  const size = Number(text('groupSize', 'group-size', '3'));
  if (!Number.isInteger(size) || size < 1 || size > 99) throw new ConfigError(`--group-size must be an integer in [1, 99], got "${String(pick('groupSize', 'group-size'))}"`);
  const placementSet = pick('placementSet', 'placement-set');
  const dnsSuffix = text('dnsSuffix', 'dns-suffix');
  const listen = text('listen', 'listen');
  const derived: Record<string, unknown> = podDefaults({ podName: String(podName), dnsSuffix, groupSize: size, listen, ...(placementSet ? { placementSet: String(placementSet) } : {}) });
  const bootstrap = pick('bootstrapGroups', 'bootstrap-groups');
  if (bootstrap) {
    if (derived.group !== 0) throw new ConfigError('--bootstrap-groups is for placement replicas (StatefulSet "placement")');
    derived.initialGroups = bootstrapGroups(String(bootstrap), size, dnsSuffix, portOf(listen));
  }
  return (name, flag) => {
    const v = pick(name, flag);
    return v === undefined || v === '' ? derived[name] : v;
  };
}
