// The KVStore resource as the operator reads it (kustomize/crd/crd.yaml is the API server's
// copy of the same rules). Pure: `parseSpec` applies the CRD's defaults and re-checks its rules, so
// a resource that reached us without the API server's validation (an older server without CEL, a
// test) is refused with a clear message instead of being half carried out.

import type { MembershipAction } from './reconcile.ts';

export const API_GROUP = 'kvs.sharded-kvs.dev';
export const API_VERSION = `${API_GROUP}/v1alpha1`;
export const KIND = 'KVStore';
export const PLURAL = 'kvstores';

export type Retention = 'Retain' | 'Delete';

export interface KVStoreSpec {
  shards: number;
  replicas: number;
  placementReplicas: number;
  partitions: number;
  image: string;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  resources: { requests?: Record<string, string | number>; limits?: Record<string, string | number> };
  storage: { size: string | number; storageClassName?: string; retention: Retention };
  doors: { resp: boolean; grpc: boolean; http: boolean };
  tracing: boolean;
  podTemplate: { metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> }; spec?: Record<string, unknown> };
}

export type Phase = 'Pending' | 'Creating' | 'Ready' | 'Scaling' | 'Resharding' | 'Upgrading' | 'Degraded';
export type ConditionType = 'Ready' | 'Progressing' | 'Resharding' | 'Degraded';

export interface Condition {
  type: ConditionType;
  status: 'True' | 'False' | 'Unknown';
  observedGeneration?: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

export interface GroupStatus {
  name: string;
  id: number;
  role: 'placement' | 'shard';
  replicas: number;
  readyReplicas: number;
  voters: number[];
  leader?: string;
  partitions?: number;
  image?: string;
}

export interface KVStoreStatus {
  observedGeneration?: number;
  phase?: Phase;
  epoch?: number;
  partitionsMoving?: number;
  currentStep?: string;
  lastError?: string;
  membershipInFlight?: MembershipAction[];
  groups?: GroupStatus[];
  conditions?: Condition[];
}

export interface KVStore {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; uid?: string; generation?: number; resourceVersion?: string; creationTimestamp?: string; deletionTimestamp?: string };
  spec: unknown;
  status?: KVStoreStatus;
}

/**
 * Pod labels the group template and the operator set: the Services', PDBs' and StatefulSets'
 * selectors and the operator's own pod watch and ownership rest on them, so spec.podTemplate may not
 * set them (the CRD's CEL rule on podTemplate.metadata.labels lists the same keys).
 */
export const RESERVED_POD_LABELS = [
  'app.kubernetes.io/name',
  'app.kubernetes.io/instance',
  'app.kubernetes.io/part-of',
  'app.kubernetes.io/component',
  'app.kubernetes.io/managed-by',
  'group',
  `${API_GROUP}/store`,
  `${API_GROUP}/group-id`,
] as const;
/** Pod annotations the operator writes (revision, settings hash, template hash) or reads (a pod's own native address). */
export const RESERVED_POD_ANNOTATIONS = [`${API_GROUP}/revision`, `${API_GROUP}/settings-hash`, `${API_GROUP}/template-hash`, `${API_GROUP}/address`] as const;

export class SpecError extends Error {
  override readonly name = 'SpecError';
}

/**
 * The longest KVStore name: `<name>-shard-<id>` StatefulSets get pods labelled
 * controller-revision-hash=`<StatefulSet name>-<up to 10 characters>`, a label value of at most 63
 * characters, so 40 leaves room for shard group ids up to MAX_GROUP_ID (the CRD's rule says the same).
 */
export const MAX_STORE_NAME = 40;
/** The largest shard group id a store of the longest name can take (5 digits). */
export const MAX_GROUP_ID = 99_999;
const DNS_1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

/** The CRD's rules on metadata.name (its objects' names derive from it); throws SpecError. */
export function checkStoreName(name: string): void {
  if (name.length > MAX_STORE_NAME) {
    throw new SpecError(`metadata.name must be at most ${MAX_STORE_NAME} characters, got ${name.length} ("${name}"): it names the store's StatefulSets <name>-shard-<id>, whose controller-revision-hash label must fit 63 characters`);
  }
  if (!DNS_1035_LABEL.test(name)) {
    throw new SpecError(`metadata.name "${name}" must be a DNS-1035 label (lowercase letters, digits and '-', starting with a letter, ending with a letter or digit; no dots): it names the store's Services`);
  }
}

/**
 * The spec with the CRD's defaults filled in; throws SpecError naming the first bad field. With
 * `name` (the resource's metadata.name), the CRD's rules on the name too.
 */
export function parseSpec(raw: unknown, name?: string): KVStoreSpec {
  if (name !== undefined) checkStoreName(name);
  const s = object(raw, 'spec');
  const storage = object(s.storage ?? {}, 'spec.storage');
  const doors = object(s.doors ?? {}, 'spec.doors');
  const resources = object(s.resources ?? {}, 'spec.resources');
  const spec: KVStoreSpec = {
    shards: int(s.shards, 'spec.shards', 1, 30),
    replicas: odd(int(s.replicas ?? 3, 'spec.replicas', 1, 9), 'spec.replicas'),
    placementReplicas: odd(int(s.placementReplicas ?? 3, 'spec.placementReplicas', 1, 9), 'spec.placementReplicas'),
    partitions: int(s.partitions ?? 1024, 'spec.partitions', 1, 65536),
    image: nonEmpty(s.image, 'spec.image'),
    resources: {
      ...(resources.requests === undefined ? {} : { requests: quantities(resources.requests, 'spec.resources.requests') }),
      ...(resources.limits === undefined ? {} : { limits: quantities(resources.limits, 'spec.resources.limits') }),
    },
    storage: {
      size: positiveQuantity(storage.size ?? '10Gi', 'spec.storage.size'),
      retention: oneOf(storage.retention ?? 'Retain', 'spec.storage.retention', ['Retain', 'Delete'] as const),
      // "" is Kubernetes' "no dynamic provisioning" (bind to a pre-created volume without a class).
      ...(storage.storageClassName === undefined ? {} : { storageClassName: str(storage.storageClassName, 'spec.storage.storageClassName') }),
    },
    doors: { resp: bool(doors.resp ?? false, 'spec.doors.resp'), grpc: bool(doors.grpc ?? false, 'spec.doors.grpc'), http: bool(doors.http ?? true, 'spec.doors.http') },
    tracing: bool(s.tracing ?? false, 'spec.tracing'),
    podTemplate: s.podTemplate === undefined ? {} : podTemplate(s.podTemplate),
  };
  // A group owning no partition leaves the configuration at the next hand-off's end, and the
  // operator replaces it with a new group (the CRD's rule says the same).
  if (spec.shards > spec.partitions) throw new SpecError(`spec.shards (${spec.shards}) cannot exceed spec.partitions (${spec.partitions}): every shard group must own a partition`);
  // Every replica's probes (/healthz, /readyz) and /metrics are on the HTTP door: it stays on.
  if (!spec.doors.http) throw new SpecError('spec.doors.http cannot be turned off (the probes and /metrics are served by the HTTP door)');
  // Two sources of the server's resources would leave one silently ignored.
  if ((spec.resources.requests || spec.resources.limits) && serverContainer(spec)?.resources !== undefined) {
    throw new SpecError(`spec.resources and spec.podTemplate.spec.containers[name=${SERVER_CONTAINER}].resources both set the server's resources: give them in one place`);
  }
  if (s.imagePullPolicy !== undefined) spec.imagePullPolicy = oneOf(s.imagePullPolicy, 'spec.imagePullPolicy', ['Always', 'IfNotPresent', 'Never'] as const);
  return spec;
}

/**
 * The CRD's transition rules: what may not change between two accepted specs. `prev` may be partial:
 * the operator passes what the running store has settled (reconcile.ts `establishedSpec`), so a change
 * that reached it around the API server's CEL rules is refused instead of half carried out.
 */
export function checkTransition(prev: Partial<Pick<KVStoreSpec, 'partitions' | 'placementReplicas'>>, next: KVStoreSpec): void {
  if (prev.partitions !== undefined && prev.partitions !== next.partitions) throw new SpecError(`spec.partitions is immutable (${prev.partitions} → ${next.partitions})`);
  if (prev.placementReplicas !== undefined && prev.placementReplicas !== next.placementReplicas) {
    throw new SpecError(`spec.placementReplicas is immutable (${prev.placementReplicas} → ${next.placementReplicas})`);
  }
}

function podTemplate(v: unknown): KVStoreSpec['podTemplate'] {
  const t = object(v, 'spec.podTemplate');
  if (t.metadata !== undefined) {
    const m = object(t.metadata, 'spec.podTemplate.metadata');
    for (const [field, reserved] of [['labels', RESERVED_POD_LABELS], ['annotations', RESERVED_POD_ANNOTATIONS]] as const) {
      if (m[field] === undefined) continue;
      for (const [k, value] of Object.entries(object(m[field], `spec.podTemplate.metadata.${field}`))) {
        if (typeof value !== 'string') throw new SpecError(`spec.podTemplate.metadata.${field}.${k} must be a string`);
        if ((reserved as readonly string[]).includes(k)) throw new SpecError(`spec.podTemplate.metadata.${field}.${k} is set by the operator (selectors, its pod watch and status rest on it): use another key`);
      }
    }
  }
  if (t.spec !== undefined) podSpec(object(t.spec, 'spec.podTemplate.spec'));
  return t as KVStoreSpec['podTemplate'];
}

/** The replica's container in the group template: a user container of this name patches it. */
export const SERVER_CONTAINER = 'kvs';
/** The group template's pod volumes and its volume claim (`data`): a user volume may not reuse a name. */
export const RESERVED_VOLUMES = ['data', 'config', 'tmp'] as const;
/** Where the template mounts them: a user mount may not shadow one. */
export const RESERVED_MOUNT_PATHS = ['/data', '/etc/kvs', '/tmp'] as const;
/** The server container's environment the template and the operator set (identity, settings file, group, tracing). */
export const RESERVED_ENV = ['KVS_CONFIG', 'KVS_POD_NAME', 'POD_NAMESPACE', 'KVS_DNS_SUFFIX', 'KVS_PLACEMENT_SET', 'KVS_BOOTSTRAP_GROUPS', 'KVS_GROUP', 'KVS_GROUP_SIZE', 'KVS_PLACEMENT_SIZE', 'KVS_TRACE'] as const;
/** What a user container named like ours may carry: it is merged into ours (env and mounts appended, resources merged). */
const SERVER_CONTAINER_FIELDS = ['name', 'env', 'envFrom', 'resources', 'volumeMounts'];
/** The least grace period a pod may be given: the preStop drain (5 s) and a graceful stop after it. */
export const MIN_GRACE_SECONDS = 15;

/**
 * spec.podTemplate.spec: containers are merged by name into the template's (a `kvs` container
 * patches the server's, other names are sidecars) and volumes appended (objects.ts `mergePodSpec`),
 * so what cannot be merged is refused here, with the field that collides, rather than by the API
 * server on every StatefulSet apply.
 */
function podSpec(s: Record<string, unknown>): void {
  const path = 'spec.podTemplate.spec';
  // The grace period is counted from the preStop hook's start (a 5 s drain): what is left must
  // cover a leader's hand-over and the server's stop, or a rolling restart kills a leader mid-way.
  if (s.terminationGracePeriodSeconds !== undefined) int(s.terminationGracePeriodSeconds, `${path}.terminationGracePeriodSeconds`, MIN_GRACE_SECONDS, 3600);
  const volumes = new Set<string>();
  if (s.volumes !== undefined) {
    for (const [i, v] of list(s.volumes, `${path}.volumes`).entries()) {
      const name = named(v, `${path}.volumes[${i}]`);
      if ((RESERVED_VOLUMES as readonly string[]).includes(name)) throw new SpecError(`${path}.volumes[${i}]: the volume name "${name}" is the operator's (${RESERVED_VOLUMES.join(', ')}): use another name`);
      if (volumes.has(name)) throw new SpecError(`${path}.volumes[${i}]: the volume name "${name}" is given twice`);
      volumes.add(name);
    }
  }
  // Container names are unique across containers and init containers (the API server's rule); the
  // template's server container is always there.
  const names = new Set<string>();
  const mountsExist = (c: unknown, at: string): void => {
    const mounts = (c as { volumeMounts?: unknown }).volumeMounts;
    if (mounts === undefined) return;
    const paths = new Set<unknown>();
    for (const [j, m] of list(mounts, `${at}.volumeMounts`).entries()) {
      const volume = named(m, `${at}.volumeMounts[${j}]`);
      if (!volumes.has(volume) && !(RESERVED_VOLUMES as readonly string[]).includes(volume)) throw new SpecError(`${at}.volumeMounts[${j}]: no volume named "${volume}" (spec.podTemplate.spec.volumes, or ${RESERVED_VOLUMES.join(', ')})`);
      const mountPath = (m as { mountPath?: unknown }).mountPath;
      if (paths.has(mountPath)) throw new SpecError(`${at}.volumeMounts[${j}]: the mount path ${String(mountPath)} is given twice`);
      paths.add(mountPath);
    }
  };
  for (const [i, raw] of list(s.containers === undefined ? [] : s.containers, `${path}.containers`).entries()) {
    const at = `${path}.containers[${i}]`;
    const name = named(raw, at);
    if (names.has(name)) throw new SpecError(`${at}: the container name "${name}" is given twice`);
    names.add(name);
    if (name !== SERVER_CONTAINER) {
      mountsExist(raw, at);
      continue;
    }
    const c = raw as Record<string, unknown>;
    for (const k of Object.keys(c)) {
      if (!SERVER_CONTAINER_FIELDS.includes(k)) throw new SpecError(`${at}.${k}: the "${SERVER_CONTAINER}" container is the operator's; only ${SERVER_CONTAINER_FIELDS.slice(1).join(', ')} are merged into it (image, imagePullPolicy and resources have fields of their own in spec)`);
    }
    if (c.env !== undefined) {
      for (const [j, e] of list(c.env, `${at}.env`).entries()) {
        const env = named(e, `${at}.env[${j}]`);
        if ((RESERVED_ENV as readonly string[]).includes(env)) throw new SpecError(`${at}.env[${j}]: ${env} is set by the operator (the replica's identity, settings and group): use spec fields or the settings instead`);
      }
    }
    if (c.envFrom !== undefined) list(c.envFrom, `${at}.envFrom`);
    if (c.resources !== undefined) object(c.resources, `${at}.resources`);
    if (c.volumeMounts !== undefined) {
      const paths = new Set<string>();
      for (const [j, m] of list(c.volumeMounts, `${at}.volumeMounts`).entries()) {
        const mat = `${at}.volumeMounts[${j}]`;
        const volume = named(m, mat);
        const mountPath = (m as { mountPath?: unknown }).mountPath;
        if (typeof mountPath !== 'string' || mountPath === '') throw new SpecError(`${mat}.mountPath must be a non-empty string`);
        const norm = mountPath.replace(/\/+$/, '') || '/';
        if ((RESERVED_MOUNT_PATHS as readonly string[]).includes(norm)) throw new SpecError(`${mat}: ${mountPath} is where the operator mounts its own volume (${RESERVED_MOUNT_PATHS.join(', ')}): use another path`);
        if (paths.has(norm)) throw new SpecError(`${mat}: the mount path ${mountPath} is given twice`);
        paths.add(norm);
        if (!volumes.has(volume) && !(RESERVED_VOLUMES as readonly string[]).includes(volume)) throw new SpecError(`${mat}: no volume named "${volume}" (spec.podTemplate.spec.volumes, or ${RESERVED_VOLUMES.join(', ')})`);
      }
    }
  }
  names.add(SERVER_CONTAINER);
  for (const [i, raw] of list(s.initContainers === undefined ? [] : s.initContainers, `${path}.initContainers`).entries()) {
    const at = `${path}.initContainers[${i}]`;
    const name = named(raw, at);
    if (names.has(name)) throw new SpecError(`${at}: the container name "${name}" is given twice (containers and init containers share their names, and "${SERVER_CONTAINER}" is the server's)`);
    names.add(name);
    mountsExist(raw, at);
  }
}

/** The user's patch of the server container (spec.podTemplate.spec.containers[name=kvs]), if any. */
export function serverContainer(spec: Pick<KVStoreSpec, 'podTemplate'>): { env?: unknown[]; envFrom?: unknown[]; resources?: Record<string, unknown>; volumeMounts?: unknown[] } | undefined {
  const containers = spec.podTemplate.spec?.containers;
  return Array.isArray(containers) ? containers.find((c: { name?: unknown }) => c.name === SERVER_CONTAINER) : undefined;
}

function list(v: unknown, path: string): unknown[] {
  if (!Array.isArray(v)) throw new SpecError(`${path} must be a list`);
  return v;
}

/** An object's `name`, a non-empty string. */
function named(v: unknown, path: string): string {
  const name = object(v, path).name;
  if (typeof name !== 'string' || name === '') throw new SpecError(`${path}.name must be a non-empty string`);
  return name;
}

function object(v: unknown, path: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new SpecError(`${path} must be an object`);
  return v as Record<string, unknown>;
}

function int(v: unknown, path: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new SpecError(`${path} must be an integer, got ${JSON.stringify(v)}`);
  if (v < min || v > max) throw new SpecError(`${path} must be in ${min}..${max}, got ${v}`);
  return v;
}

function odd(v: number, path: string): number {
  if (v % 2 !== 1) throw new SpecError(`${path} must be odd, got ${v}`);
  return v;
}

function nonEmpty(v: unknown, path: string): string {
  if (typeof v !== 'string' || v.length === 0) throw new SpecError(`${path} must be a non-empty string`);
  return v;
}

function str(v: unknown, path: string): string {
  if (typeof v !== 'string') throw new SpecError(`${path} must be a string`);
  return v;
}

function bool(v: unknown, path: string): boolean {
  if (typeof v !== 'boolean') throw new SpecError(`${path} must be true or false`);
  return v;
}

function oneOf<T extends string>(v: unknown, path: string, allowed: readonly T[]): T {
  if (!allowed.includes(v as T)) throw new SpecError(`${path} must be one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
  return v as T;
}

/** A Kubernetes quantity that is not negative: the CRD's pattern (kustomize/crd/crd.yaml). */
const QUANTITY = /^\+?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$/;

function quantity(v: unknown, path: string): string | number {
  if ((typeof v === 'number' && Number.isInteger(v) && v >= 0) || (typeof v === 'string' && QUANTITY.test(v))) return v;
  throw new SpecError(`${path} must be a quantity such as 10Gi or 500m (not negative), not ${JSON.stringify(v)}`);
}

const QUANTITY_SUFFIX: Record<string, number> = { '': 1, n: 1e-9, u: 1e-6, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };

/** A quantity's value (256Mi → 268435456, 250m → 0.25), for comparing two; NaN when it is not one. */
export function quantityValue(q: string | number): number {
  if (typeof q === 'number') return q;
  if (!QUANTITY.test(q)) return NaN;
  const m = /^\+?([0-9.]+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9.]+)?$/.exec(q);
  if (!m) return NaN;
  const [, n, suffix = ''] = m;
  // An exponent has digits after the e/E; E and Ei alone are the exa units.
  return suffix in QUANTITY_SUFFIX ? Number(n) * QUANTITY_SUFFIX[suffix]! : Number(`${n}${suffix}`);
}

/**
 * A quantity greater than zero (the CRD's pattern for storage.size): QUANTITY with a digit other than
 * 0 in the number before the suffix. A zero volume size would pass here and be refused only later,
 * by the API server, on every volume claim.
 */
const POSITIVE_QUANTITY = /^\+?(([0-9]*[1-9][0-9]*(\.[0-9]*)?)|([0-9]*\.[0-9]*[1-9][0-9]*))(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$/;

function positiveQuantity(v: unknown, path: string): string | number {
  if ((typeof v === 'number' && Number.isInteger(v) && v >= 1) || (typeof v === 'string' && POSITIVE_QUANTITY.test(v))) return v;
  throw new SpecError(`${path} must be a quantity greater than zero such as 10Gi or 512Mi, not ${JSON.stringify(v)}`);
}

function quantities(v: unknown, path: string): Record<string, string | number> {
  const o = object(v, path);
  return Object.fromEntries(Object.entries(o).map(([k, q]) => [k, quantity(q, `${path}.${k}`)]));
}
