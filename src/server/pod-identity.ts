// A replica's identity on Kubernetes, from its StatefulSet pod name (docs/kubernetes.md). Pure.
//
// A pod `<set>-<ordinal>` of StatefulSet `<set>` (whose headless Service has the same name) is:
//   group    0 for the set `placement`, N+1 for the set `shard-N`
//   id       ordinal+1 in the placement group, group*100 + ordinal+1 in a shard group (as `kvs up`)
//   peers    `<set>-<m>.<set>.<dns-suffix>:<port>` for every ordinal m < group size: the stable
//            DNS names the headless Service gives the pods (they may not resolve yet: replica links
//            retry until they do)
// and a shard replica finds the placement group the same way from the placement set's name.
// A pod at or past the group size (a scaled-up set; the operator's groups once configured, where the
// size is 0) is not a founding member: it lists only itself and, with an empty volume, starts with
// --join and waits to be added (`kvs replica add`); with data it recovers its membership from its log.
// Settings given explicitly (--id, --group, --replicas, --placement, --join) win over derived ones
// (config.ts); an explicit --group frees the set's name from the placement/shard-N pattern (the
// operator names its sets <store>-shard-<group id>).
import type { GroupInfo } from '../placement/config.ts';
import type { PeerAddress } from '../transport/peers.ts';
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
  /** Founding members: the pods with an ordinal below it bootstrap the group together. */
  groupSize: number;
  /** host:port this replica listens on: its port is every replica's port. */
  listen: string;
  /** The placement StatefulSet's name, for a shard replica ('' or absent: none). */
  placementSet?: string;
  /** Pods of the placement StatefulSet (absent or 0: groupSize). */
  placementSize?: number;
  /** The group id, when given explicitly (else it follows from the set's name). */
  group?: number;
  /** This pod's data directory is missing or empty (decides --join for a pod past the founders). */
  dataEmpty?: boolean;
}

export interface PodDefaults {
  id: number;
  group: number;
  replicas: PeerAddress[];
  placement?: string[];
  join?: boolean;
}

/** The identity settings a pod name stands for. */
export function podDefaults(s: PodSettings): PodDefaults {
  const { set, ordinal } = parsePodName(s.podName);
  const port = portOf(s.listen);
  const group = s.group ?? groupOfSet(set);
  const id = replicaIdOf(group, ordinal);
  const founder = ordinal < s.groupSize;
  if (!founder && group === 0) throw new ConfigError(`pod ${s.podName} has ordinal ${ordinal}, but the placement group has ${s.groupSize} replicas (it does not grow by scaling its StatefulSet)`);
  const replicas = founder ? Array.from({ length: s.groupSize }, (_, m) => ({ id: replicaIdOf(group, m), address: podAddress(set, m, s.dnsSuffix, port) })) : [{ id, address: podAddress(set, ordinal, s.dnsSuffix, port) }];
  const out: PodDefaults = { id, group, replicas };
  if (!founder && s.dataEmpty !== false) out.join = true;
  if (s.placementSet) {
    if (group === 0) throw new ConfigError('a placement replica takes no --placement-set');
    const size = s.placementSize || s.groupSize;
    if (size === 0) throw new ConfigError('--placement-set with --group-size 0 needs --placement-size (the placement StatefulSet\'s pods)');
    out.placement = Array.from({ length: size }, (_, m) => podAddress(s.placementSet!, m, s.dnsSuffix, port));
  }
  return out;
}

/**
 * The address each replica id of this pod's group stands for: the pod with ordinal id − first id,
 * under the same StatefulSet (ids of another group, or ordinals past 99, stand for none).
 */
export function memberAddresses(podName: string, group: number, dnsSuffix: string, listen: string): (id: number) => string | undefined {
  const { set } = parsePodName(podName);
  const port = portOf(listen);
  return (id) => {
    const ordinal = id - replicaIdOf(group, 0);
    return Number.isInteger(ordinal) && ordinal >= 0 && ordinal < 100 ? podAddress(set, ordinal, dnsSuffix, port) : undefined;
  };
}

function portOf(listen: string): number {
  const port = Number(listen.slice(listen.lastIndexOf(':') + 1));
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ConfigError(`--listen "${listen}" has no port`);
  return port;
}

/** The checked settings podIdentity reads. */
interface PodInputs {
  podName: string | undefined;
  dnsSuffix: string | undefined;
  groupSize: number;
  listen: string | undefined;
  placementSet: string | undefined;
  placementSize: number;
  bootstrapGroups: string | undefined;
  /** --group when given (undefined: from the set's name). */
  explicitGroup: number | undefined;
  dataEmpty: boolean;
}

/**
 * Without --pod-name: undefined. With it: the settings it stands for (id, group, replicas,
 * placement; loadConfig uses those not given explicitly) and, for --bootstrap-groups on a placement
 * replica, the shard groups of the first configuration.
 */
export function podIdentity(v: PodInputs): { settings: Partial<Record<'id' | 'group' | 'replicas' | 'placement' | 'join', unknown>>; initialGroups?: GroupInfo[] } | undefined {
  if (!v.podName) {
    if (v.bootstrapGroups || v.placementSet) throw new ConfigError('--bootstrap-groups and --placement-set need --pod-name');
    return undefined;
  }
  if (!v.dnsSuffix) throw new ConfigError('--pod-name needs --dns-suffix (e.g. kvs.svc)');
  if (!v.listen) throw new ConfigError('--listen is required');
  const settings = podDefaults({
    podName: v.podName,
    dnsSuffix: v.dnsSuffix,
    groupSize: v.groupSize,
    listen: v.listen,
    dataEmpty: v.dataEmpty,
    placementSize: v.placementSize,
    ...(v.placementSet ? { placementSet: v.placementSet } : {}),
    ...(v.explicitGroup !== undefined ? { group: v.explicitGroup } : {}),
  });
  if (!v.bootstrapGroups) return { settings };
  if (settings.group !== 0) throw new ConfigError('--bootstrap-groups is for placement replicas (StatefulSet "placement")');
  return { settings, initialGroups: bootstrapGroups(v.bootstrapGroups, v.groupSize, v.dnsSuffix, portOf(v.listen)) };
}
