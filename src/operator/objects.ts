// A group's Kubernetes objects (StatefulSet, headless Service, PodDisruptionBudget), pure. The
// shape follows kustomize/base/group (one group template: Parallel pods, a headless Service that
// publishes not-ready addresses, readiness = leader known and caught up, maxUnavailable 1), with
// what the operator needs on top: OnDelete updates (the operator picks which pod restarts, the
// leader last), the template revision and bootstrap marker as annotations, PVC retention from the
// spec, an owner reference to the KVStore. `groupObjects` is the only place that builds them.
import { groupName, PLACEMENT_GROUP, replicaIdOf } from './reconcile.ts';
import { API_GROUP, API_VERSION, KIND, type KVStoreSpec } from './spec.ts';

export const FIELD_MANAGER = 'kvctl';
export const ANNOTATION_REVISION = `${API_GROUP}/revision`;
export const ANNOTATION_JOIN_FROM = `${API_GROUP}/join-from`;
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
  /** Pods with an ordinal at or above this start with --join when their volume is empty. */
  joinFrom: number;
}

export type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace: string; labels?: Record<string, string>; annotations?: Record<string, string>; ownerReferences?: unknown[] }; [k: string]: unknown };

/** The native address of a group's pod: its stable DNS name through the headless Service. */
export function podAddress(store: string, namespace: string, group: number, ordinal: number): string {
  const name = groupName(store, group);
  return `${name}-${ordinal}.${name}.${namespace}.svc:${NATIVE_PORT}`;
}

export function groupObjects(owner: Owner, spec: KVStoreSpec, p: GroupParams): K8sObject[] {
  const name = groupName(owner.name, p.group);
  const labels = { 'app.kubernetes.io/name': 'kvs', 'app.kubernetes.io/instance': owner.name, 'app.kubernetes.io/part-of': 'sharded-kvs', 'app.kubernetes.io/component': p.group === PLACEMENT_GROUP ? 'placement' : 'shard', 'app.kubernetes.io/managed-by': FIELD_MANAGER, group: name, [LABEL_STORE]: owner.name, [LABEL_GROUP_ID]: String(p.group) };
  const selector = { [LABEL_STORE]: owner.name, group: name };
  const meta = (extra: Record<string, unknown> = {}) => ({
    name,
    namespace: owner.namespace,
    labels,
    ownerReferences: [{ apiVersion: API_VERSION, kind: KIND, name: owner.name, uid: owner.uid, controller: true, blockOwnerDeletion: true }],
    ...extra,
  });
  const placementList = Array.from({ length: spec.placementReplicas }, (_, o) => podAddress(owner.name, owner.namespace, PLACEMENT_GROUP, o)).join(',');
  const bootstrap = Array.from({ length: p.joinFrom }, (_, o) => `${replicaIdOf(p.group, o)}=${podAddress(owner.name, owner.namespace, p.group, o)}`).join(',');
  const doors = [spec.doors.resp ? '--resp 0.0.0.0:6379' : '', spec.doors.grpc ? '--grpc 0.0.0.0:50051' : '', `--http 0.0.0.0:${HTTP_PORT}`, spec.tracing ? '--trace' : ''].filter(Boolean).join(' ');
  // The replica id comes from the pod ordinal (as kvs up numbers replicas); a pod past the bootstrap
  // members, or any pod of a configured group, joins when its volume is empty (kvs replica add).
  // A bootstrap member lists the bootstrap members; any other pod lists only itself (with data it
  // recovers its membership from its log; without, it joins and learns its peers from placement).
  const script = [
    'set -e',
    'ORD="${POD_NAME##*-}"',
    `ID=$(( ${p.group === PLACEMENT_GROUP ? 0 : p.group * 100} + ORD + 1 ))`,
    `SELF="$POD_NAME.${name}.${owner.namespace}.svc:${NATIVE_PORT}"`,
    `REPLICAS="${bootstrap}"`,
    'JOIN=""',
    'if [ "$ORD" -ge "$KVS_JOIN_FROM" ]; then',
    '  REPLICAS="$ID=$SELF"',
    '  if [ -z "$(ls -A "${KVS_DATA:-/data}" 2>/dev/null)" ]; then JOIN=--join; fi',
    'fi',
    `exec kvs server --id "$ID" --group ${p.group} --listen "$SELF" --data "\${KVS_DATA:-/data}" ${p.group === PLACEMENT_GROUP ? '' : `--placement ${placementList} `}--replicas "$REPLICAS" $JOIN ${doors}`,
  ].join('\n');
  const override = spec.podTemplate;
  const statefulSet: K8sObject = {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: meta({ annotations: { [ANNOTATION_REVISION]: p.revision, [ANNOTATION_JOIN_FROM]: String(p.joinFrom) } }),
    spec: {
      serviceName: name,
      replicas: p.replicas,
      podManagementPolicy: 'Parallel',
      updateStrategy: { type: 'OnDelete' },
      // A removed replica's volume is useless (its log says it is still a member); a removed group's
      // volumes follow spec.storage.retention.
      persistentVolumeClaimRetentionPolicy: { whenScaled: 'Delete', whenDeleted: spec.storage.retention },
      selector: { matchLabels: selector },
      template: {
        metadata: { labels: { ...labels, ...(override.metadata?.labels ?? {}) }, annotations: { ...(override.metadata?.annotations ?? {}), [ANNOTATION_REVISION]: p.revision } },
        spec: {
          terminationGracePeriodSeconds: 30,
          enableServiceLinks: false,
          automountServiceAccountToken: false,
          ...(override.spec ?? {}),
          containers: [
            {
              name: 'kvs',
              image: spec.image,
              ...(spec.imagePullPolicy ? { imagePullPolicy: spec.imagePullPolicy } : {}),
              command: ['/bin/sh', '-c', script],
              env: [
                { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                { name: 'KVS_JOIN_FROM', value: String(p.joinFrom) },
              ],
              ports: [
                { name: 'native', containerPort: NATIVE_PORT },
                { name: 'http', containerPort: HTTP_PORT },
                ...(spec.doors.resp ? [{ name: 'resp', containerPort: 6379 }] : []),
                ...(spec.doors.grpc ? [{ name: 'grpc', containerPort: 50051 }] : []),
              ],
              startupProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 2, failureThreshold: 150 },
              readinessProbe: { httpGet: { path: '/readyz', port: 'http' }, periodSeconds: 2, timeoutSeconds: 2, failureThreshold: 2 },
              livenessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 },
              resources: spec.resources,
              volumeMounts: [{ name: 'data', mountPath: '/data' }],
            },
          ],
        },
      },
      volumeClaimTemplates: [
        {
          metadata: { name: 'data', labels: { ...selector, [LABEL_GROUP_ID]: String(p.group) } },
          spec: { accessModes: ['ReadWriteOnce'], ...(spec.storage.storageClassName ? { storageClassName: spec.storage.storageClassName } : {}), resources: { requests: { storage: spec.storage.size } } },
        },
      ],
    },
  };
  const service: K8sObject = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(),
    spec: {
      clusterIP: 'None',
      publishNotReadyAddresses: true,
      selector,
      ports: [
        { name: 'native', port: NATIVE_PORT, targetPort: 'native' },
        { name: 'http', port: HTTP_PORT, targetPort: 'http' },
      ],
    },
  };
  const pdb: K8sObject = { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: meta(), spec: { maxUnavailable: 1, selector: { matchLabels: selector } } };
  return [service, pdb, statefulSet];
}
