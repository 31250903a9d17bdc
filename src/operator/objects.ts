// A store's Kubernetes objects, pure: each group's StatefulSet, headless Service and
// PodDisruptionBudget, and the store's settings ConfigMap. They are the group template of
// kustomize/base/group instantiated as kustomize would (its replacements, with the group's values;
// group-template.ts reads the files), plus what the operator owns on top: the store's labels and an
// owner reference, OnDelete updates (the operator picks which pod restarts, the leader last), the
// revision, founder count, settings hash and template hash as annotations, the group id and founder
// count as environment (the pod's identity then follows from its name: src/server/pod-identity.ts),
// PVC retention, image, resources, storage, doors, tracing (the tracing overlay's patch) and pod
// template overrides.
// `groupObjects` and `storeConfig` are the only places that build them.
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import type { GroupTemplate } from './group-template.ts';
import { applyJsonPatch, applyReplacements, TemplateError } from './kustomize.ts';
import { contentHash, groupName, PLACEMENT_GROUP } from './reconcile.ts';
import { API_GROUP, API_VERSION, KIND, parseSpec, quantityValue, SERVER_CONTAINER, SpecError, type KVStoreSpec } from './spec.ts';
import { startBoundMs } from '../cluster/start-bound.ts';

export const FIELD_MANAGER = 'kvctl';
export const ANNOTATION_REVISION = `${API_GROUP}/revision`;
export const ANNOTATION_JOIN_FROM = `${API_GROUP}/join-from`;
/** On the pod template: a hash of the settings ConfigMap's data (`settingsHash`). */
export const ANNOTATION_SETTINGS = `${API_GROUP}/settings-hash`;
/** On the pod template: a hash of the group template the operator instantiates (`templateHash`). */
export const ANNOTATION_TEMPLATE = `${API_GROUP}/template-hash`;
export const LABEL_STORE = `${API_GROUP}/store`;
export const LABEL_GROUP_ID = `${API_GROUP}/group-id`;
export const NATIVE_PORT = 7000;
export const HTTP_PORT = 8080;

export interface Owner {
  name: string;
  namespace: string;
  uid: string;
}

export interface GroupParams {
  group: number;
  replicas: number;
  revision: string;
  /** Founders: pods with a lower ordinal bootstrap the group; the others join when their volume is empty. */
  joinFrom: number;
  /**
   * The live StatefulSet's volumeClaimTemplates, when it exists. The API server refuses any change
   * to them, so a changed spec.storage applies to new groups only and these are sent back as they are.
   */
  claimTemplates?: unknown[];
}

export type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string>; ownerReferences?: unknown[] }; [k: string]: unknown };

/**
 * What follows `<pod>.<set>.` in a pod's DNS name, as the pods make it of the template's
 * KVS_DNS_SUFFIX (`<namespace>.svc`): with the cluster domain when it is known
 * (address/cluster-dns.ts; the operator runs in its stores' namespace, so its resolv.conf names the
 * same domain), so the addresses the operator writes into the configuration are the pods' own.
 */
export function dnsSuffix(namespace: string, domain: string | undefined): string {
  return domain ? `${namespace}.svc.${domain}` : `${namespace}.svc`;
}

/** The native address of a group's pod: its stable DNS name through the headless Service. */
export function podAddress(store: string, suffix: string, group: number, ordinal: number): string {
  const name = groupName(store, group);
  return `${name}-${ordinal}.${name}.${suffix}:${NATIVE_PORT}`;
}

export const configName = (store: string): string => `${store}-config`;

type Json = Record<string, unknown>;
interface Container {
  name: string;
  image: string;
  imagePullPolicy?: string;
  env: { name: string; value?: string }[];
  ports: { name: string }[];
  resources?: unknown;
  [k: string]: unknown;
}
interface StatefulSetSpec {
  replicas: number;
  updateStrategy: unknown;
  persistentVolumeClaimRetentionPolicy?: unknown;
  template: { metadata: { labels: Record<string, string>; annotations?: Record<string, string> }; spec: PodSpec };
  volumeClaimTemplates: { metadata: { name: string; labels?: Record<string, string> }; spec: Json & { resources: { requests: Record<string, string | number> } } }[];
}

function ownerMeta(owner: Owner, o: K8sObject, labels: Record<string, string>): void {
  o.metadata.namespace = owner.namespace;
  o.metadata.labels = { ...(o.metadata.labels ?? {}), ...labels };
  o.metadata.ownerReferences = [{ apiVersion: API_VERSION, kind: KIND, name: owner.name, uid: owner.uid, controller: true, blockOwnerDeletion: true }];
}

const storeLabels = (owner: Owner): Record<string, string> => ({ 'app.kubernetes.io/instance': owner.name, 'app.kubernetes.io/managed-by': FIELD_MANAGER, [LABEL_STORE]: owner.name });

/** The values a group directory of kustomize/base/groups gives the component (its values.yaml). */
export interface GroupValues {
  name: string;
  component: 'placement' | 'shard';
  placementSet: string;
  bootstrapGroups: string;
}

/** The component's objects for one group, as `kubectl kustomize` renders them from a group directory. */
export function instantiate(t: GroupTemplate, values: GroupValues): K8sObject[] {
  const objects = structuredClone(t.resources);
  applyReplacements(objects, t.replacements, [{ kind: 'ConfigMap', data: { ...values } }]);
  return objects;
}

export function groupObjects(t: GroupTemplate, owner: Owner, spec: KVStoreSpec, p: GroupParams): K8sObject[] {
  return renderGroup(t, owner, spec, p, templateHash(t));
}

/** What `groupObjects` renders, with the template hash it puts on the pod template given. */
export type GroupRenderer = (t: GroupTemplate, owner: Owner, spec: KVStoreSpec, p: GroupParams, templateHashValue: string) => K8sObject[];

export const renderGroup: GroupRenderer = (t, owner, spec, p, templateHashValue) => {
  const name = groupName(owner.name, p.group);
  const placement = p.group === PLACEMENT_GROUP;
  const objects = instantiate(t, { name, component: placement ? 'placement' : 'shard', placementSet: placement ? '' : groupName(owner.name, PLACEMENT_GROUP), bootstrapGroups: '' });
  const labels = { ...storeLabels(owner), [LABEL_GROUP_ID]: String(p.group) };
  for (const o of objects) ownerMeta(owner, o, labels);

  const sts = objects.find((o) => o.kind === 'StatefulSet')!;
  sts.metadata.annotations = { ...(sts.metadata.annotations ?? {}), [ANNOTATION_REVISION]: p.revision, [ANNOTATION_JOIN_FROM]: String(p.joinFrom) };
  const s = sts.spec as StatefulSetSpec;
  s.replicas = p.replicas;
  s.updateStrategy = { type: 'OnDelete' };
  // A removed replica's volume is useless (its log says it is still a member); a removed group's
  // volumes follow spec.storage.retention.
  s.persistentVolumeClaimRetentionPolicy = { whenScaled: 'Delete', whenDeleted: spec.storage.retention };
  const override = spec.podTemplate;
  s.template.metadata.labels = { ...s.template.metadata.labels, ...labels, ...(override.metadata?.labels ?? {}) };
  // The settings' hash: the ConfigMap keeps its name, so without it a change of its data alone
  // would leave the pod template as it was (the pods read the settings only at start). The
  // template's hash: what the operator version ships, so its pods show which one they came from.
  s.template.metadata.annotations = {
    ...(s.template.metadata.annotations ?? {}),
    ...(override.metadata?.annotations ?? {}),
    [ANNOTATION_REVISION]: p.revision,
    [ANNOTATION_SETTINGS]: settingsHash(storeConfig(t, owner, spec)),
    [ANNOTATION_TEMPLATE]: templateHashValue,
  };
  const c = s.template.spec.containers.find((x) => x.name === 'kvs');
  if (!c) throw new TemplateError('the group template has no container named kvs');
  c.image = spec.image;
  if (spec.imagePullPolicy) c.imagePullPolicy = spec.imagePullPolicy;
  if (spec.resources.requests || spec.resources.limits) c.resources = spec.resources;
  // The operator's group ids are not the template's set names (shard-N is group N+1), and a group
  // once configured has no founders (every pod with an empty volume joins).
  c.env.push({ name: 'KVS_GROUP', value: String(p.group) }, { name: 'KVS_GROUP_SIZE', value: String(p.joinFrom) });
  if (!placement) c.env.push({ name: 'KVS_PLACEMENT_SIZE', value: String(spec.placementReplicas) });
  c.ports = c.ports.filter((x) => (x.name !== 'resp' || spec.doors.resp) && (x.name !== 'grpc' || spec.doors.grpc));
  const config = s.template.spec.volumes?.find((v) => v.configMap);
  if (config) config.configMap!.name = configName(owner.name);
  const claim = s.volumeClaimTemplates[0];
  if (!claim) throw new TemplateError('the group template has no volume claim template');
  claim.metadata.labels = { ...(claim.metadata.labels ?? {}), [LABEL_STORE]: owner.name, group: name, [LABEL_GROUP_ID]: String(p.group) };
  claim.spec.resources.requests.storage = spec.storage.size;
  if (spec.storage.storageClassName !== undefined) claim.spec.storageClassName = spec.storage.storageClassName;
  if (p.claimTemplates) {
    // Sent back as they exist, without what the API server adds to a claim (its status).
    s.volumeClaimTemplates = structuredClone(p.claimTemplates).map((c) => {
      const { status: _status, ...rest } = c as Record<string, unknown>;
      return rest;
    }) as StatefulSetSpec['volumeClaimTemplates'];
  }
  // spec.image may predate src/server/start-probe.ts: such a replica answers its startup probe only
  // after walking its whole store. The template's window fits the base's 1Gi volumes; a bigger volume
  // gets as long as a full one may take (else such a replica holding more than ~2 GB is killed before
  // it opens, at every start). From the claim as it exists.
  const probe = c.startupProbe as { periodSeconds?: number; failureThreshold?: number; initialDelaySeconds?: number } | undefined;
  if (probe) {
    const period = probe.periodSeconds ?? 10;
    const need = Math.ceil((startBoundMs(quantityValue(s.volumeClaimTemplates[0]!.spec.resources.requests.storage!)) / 1000 - (probe.initialDelaySeconds ?? 0)) / period);
    if (need > (probe.failureThreshold ?? 3)) probe.failureThreshold = need;
  }
  if (spec.tracing) applyJsonPatch(sts, t.tracing);
  s.template.spec = mergePodSpec(s.template.spec, override.spec ?? {});
  const order = ['Service', 'PodDisruptionBudget', 'StatefulSet'];
  return objects.sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind));
};

type PodSpec = Json & { containers: Container[]; volumes?: { name: string; configMap?: { name: string } }[] };
type UserContainer = Json & { name: string; env?: unknown[]; envFrom?: unknown[]; resources?: Record<string, unknown>; volumeMounts?: unknown[] };

/**
 * The pod spec with spec.podTemplate.spec merged in, as a strategic merge patch would: containers
 * by name (one named like the server's adds env, envFrom and volume mounts to it and merges its
 * resources, a limit below the template's request lowering it and a request above its limit
 * raising it; any other is a sidecar, appended),
 * volumes appended, securityContext and affinity merged key by key (below), every other field
 * replacing the template's (nodeSelector, tolerations, ...). parseSpec has refused what cannot merge (a
 * reserved volume name or env var, other fields of the server container); a template that collides
 * anyway is an error here, not a StatefulSet the API server refuses.
 */
export function mergePodSpec(base: PodSpec, override: Json): PodSpec {
  const { containers: userContainers, volumes: userVolumes, ...rest } = override as { containers?: UserContainer[]; volumes?: { name: string }[] };
  const out: PodSpec = { ...structuredClone(base), ...structuredClone(rest) };
  // As a strategic merge patch merges these structs: an fsGroup keeps runAsNonRoot and the seccomp
  // profile (and the tracing patch's runAsUser 0), a nodeAffinity keeps the one-replica-per-node
  // podAntiAffinity. Each part given replaces the template's; an empty affinity removes it all (the
  // documented way to run on one node).
  for (const k of ['securityContext', 'affinity'] as const) {
    const mine = base[k];
    const theirs = (rest as Json)[k];
    if (!isObject(mine) || !isObject(theirs) || (k === 'affinity' && Object.keys(theirs).length === 0)) continue;
    out[k] = { ...structuredClone(mine), ...structuredClone(theirs) };
  }
  const containers = out.containers;
  for (const u of structuredClone(userContainers ?? [])) {
    const mine = containers.find((c) => c.name === u.name) as (Container & Json) | undefined;
    if (!mine) {
      containers.push(u as unknown as Container);
      continue;
    }
    if (u.name !== SERVER_CONTAINER) throw new SpecError(`spec.podTemplate.spec.containers: "${u.name}" is a container of the group template`);
    const env = (u.env ?? []) as { name: string }[];
    const clash = env.find((e) => mine.env.some((x) => x.name === e.name));
    if (clash) throw new SpecError(`spec.podTemplate.spec.containers[name=${SERVER_CONTAINER}].env: ${clash.name} is set by the operator`);
    mine.env.push(...(env as Container['env']));
    if (u.envFrom) mine.envFrom = [...((mine.envFrom as unknown[] | undefined) ?? []), ...u.envFrom];
    if (u.volumeMounts) mine.volumeMounts = [...((mine.volumeMounts as unknown[] | undefined) ?? []), ...u.volumeMounts];
    if (u.resources) {
      const r = (mine.resources ?? {}) as Record<string, unknown>;
      const merged: Record<string, unknown> = { ...r, ...u.resources };
      // requests and limits key by key: a user memory limit keeps the template's cpu request.
      for (const k of ['requests', 'limits']) {
        if (r[k] && u.resources[k]) merged[k] = { ...(r[k] as Json), ...(u.resources[k] as Json) };
      }
      // The API server refuses a request above its limit: a limit given without its request lowers
      // the template's request to it (as Kubernetes defaults an absent request to the limit).
      const requests = merged.requests as Record<string, string | number> | undefined;
      const userRequests = (u.resources.requests ?? {}) as Record<string, unknown>;
      for (const [k, limit] of Object.entries((u.resources.limits ?? {}) as Record<string, string | number>)) {
        if (requests?.[k] !== undefined && !(k in userRequests) && quantityValue(requests[k]) > quantityValue(limit)) requests[k] = limit;
      }
      // And the other way: a request given without its limit, above the template's limit, raises
      // that limit to it (kept, requests {memory: 1Gi} met the template's 512Mi limit).
      const limits = merged.limits as Record<string, string | number> | undefined;
      const userLimits = (u.resources.limits ?? {}) as Record<string, unknown>;
      for (const [k, request] of Object.entries(userRequests as Record<string, string | number>)) {
        if (limits?.[k] !== undefined && !(k in userLimits) && quantityValue(request) > quantityValue(limits[k])) limits[k] = request;
      }
      mine.resources = merged;
    }
  }
  if (userVolumes?.length) {
    const volumes = out.volumes ?? [];
    const clash = userVolumes.find((v) => volumes.some((x) => x.name === v.name));
    if (clash) throw new SpecError(`spec.podTemplate.spec.volumes: the volume name "${clash.name}" is the operator's`);
    out.volumes = [...volumes, ...structuredClone(userVolumes)];
  }
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A hash of a settings ConfigMap's data: on the pod template (ANNOTATION_SETTINGS) and in the
 * revision (reconcile.ts `templateRevision`), so changed settings restart the pods.
 */
export function settingsHash(cm: K8sObject): string {
  return contentHash(cm.data ?? {});
}

/**
 * A hash of the group template as loaded (its resources, replacements and tracing patch, before any
 * store's values are put in; the settings have their own hash): on the pod template
 * (ANNOTATION_TEMPLATE) and in the revision (reconcile.ts `templateRevision`), so an operator version
 * that instantiates another template, or fills it in otherwise (a probe, an env var, a resource
 * default, args), re-applies it and restarts the pods. The parsed objects are hashed, not the files:
 * comments and key order count for nothing, and the same files give the same hash in every process.
 * `render` is for tests: another operator version's code.
 */
export function templateHash(t: GroupTemplate, render: GroupRenderer = renderGroup): string {
  const { resources, replacements, tracing } = t;
  return contentHash({ resources, replacements, tracing, rendered: probeRenderings(t, render) });
}

/**
 * The template as this operator version fills it in for a fixed store: what the code adds (update
 * strategy, environment, ports, volumes) changes with the operator version as much as the files do,
 * and under OnDelete a change nobody hashed would never reach the pods. Fixed inputs, so every
 * store and every operator process get the same hash; both group kinds, each with the optional fields
 * unset and set.
 */
function probeRenderings(t: GroupTemplate, render: GroupRenderer): K8sObject[][] {
  const owner = { name: 'probe', namespace: 'probe', uid: 'probe' };
  const params = (group: number): GroupParams => ({ group, replicas: 3, revision: 'probe', joinFrom: 3 });
  const specs = [
    parseSpec({ image: 'probe', shards: 1 }),
    parseSpec({
      image: 'probe',
      shards: 1,
      tracing: true,
      doors: { resp: true, grpc: true },
      imagePullPolicy: 'Always',
      resources: { requests: { cpu: '1' } },
      storage: { storageClassName: 'probe' },
      podTemplate: {
        spec: {
          containers: [{ name: SERVER_CONTAINER, env: [{ name: 'PROBE', value: 'probe' }], volumeMounts: [{ name: 'probe', mountPath: '/probe' }] }, { name: 'probe', image: 'probe' }],
          volumes: [{ name: 'probe', emptyDir: {} }],
        },
      },
    }),
    parseSpec({ image: 'probe', shards: 1, podTemplate: { spec: { containers: [{ name: SERVER_CONTAINER, resources: { limits: { cpu: '1' } } }] } } }),
    // How pod-level structs merge, and a limit below the template's request.
    parseSpec({
      image: 'probe',
      shards: 1,
      podTemplate: { spec: { securityContext: { fsGroup: 1 }, affinity: { nodeAffinity: {} }, containers: [{ name: SERVER_CONTAINER, resources: { limits: { cpu: '1m', memory: '1' } } }] } },
    }),
  ];
  return specs.flatMap((spec) => [PLACEMENT_GROUP, 1].map((group) => render(t, owner, spec, params(group), '')));
}

/** The store's settings (kvs.yaml), from the template's: the doors the spec turns off removed. */
export function storeConfig(t: GroupTemplate, owner: Owner, spec: KVStoreSpec): K8sObject {
  const cm = structuredClone(t.config);
  cm.metadata = { ...cm.metadata, name: configName(owner.name) };
  ownerMeta(owner, cm, storeLabels(owner));
  const data = cm.data as Record<string, string>;
  const settings = parseYaml(data['kvs.yaml'] ?? '') as Record<string, unknown>;
  if (!spec.doors.resp) delete settings.resp;
  if (!spec.doors.grpc) delete settings.grpc;
  cm.data = { 'kvs.yaml': stringifyYaml(settings) };
  return cm;
}
