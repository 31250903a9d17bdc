// The operator's Role (kustomize/operator/rbac.yaml) grants what src/operator calls and nothing
// more. adapter.test.ts checks that every request it records is allowed; this checks the other way:
// every rule of the Role is used by a call in the source (an API client method, the informers'
// list and watch, the server-side applies), and a call the table does not know fails the test.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { loadGroupTemplate } from '../../src/operator/group-template.ts';
import { groupObjects, storeConfig } from '../../src/operator/objects.ts';
import { API_GROUP, PLURAL, parseSpec } from '../../src/operator/spec.ts';

const SRC = new URL('../../src/operator/', import.meta.url);
const source = readdirSync(SRC).filter((f) => f.endsWith('.ts')).map((f) => readFileSync(new URL(f, SRC), 'utf8')).join('\n');

/** Each typed client method the operator may call → the API group, resource and verbs it takes. */
const CALLS: Record<string, [string, string, string[]]> = {
  // The informers list, then watch (makeInformer).
  listNamespacedCustomObject: [API_GROUP, PLURAL, ['list', 'watch']],
  listNamespacedStatefulSet: ['apps', 'statefulsets', ['list', 'watch']],
  listNamespacedPod: ['', 'pods', ['list', 'watch']],
  listNamespacedPersistentVolumeClaim: ['', 'persistentvolumeclaims', ['list']],
  deleteCollectionNamespacedPersistentVolumeClaim: ['', 'persistentvolumeclaims', ['deletecollection']],
  deleteNamespacedPod: ['', 'pods', ['delete']],
  deleteNamespacedStatefulSet: ['apps', 'statefulsets', ['delete']],
  deleteNamespacedService: ['', 'services', ['delete']],
  deleteNamespacedPodDisruptionBudget: ['policy', 'poddisruptionbudgets', ['delete']],
  patchNamespacedCustomObjectStatus: [API_GROUP, `${PLURAL}/status`, ['patch']],
  createNamespacedEvent: ['', 'events', ['create']],
  readNamespacedLease: ['coordination.k8s.io', 'leases', ['get']],
  createNamespacedLease: ['coordination.k8s.io', 'leases', ['create']],
  replaceNamespacedLease: ['coordination.k8s.io', 'leases', ['update']],
};

const PLURALS: Record<string, [string, string]> = {
  StatefulSet: ['apps', 'statefulsets'],
  Service: ['', 'services'],
  PodDisruptionBudget: ['policy', 'poddisruptionbudgets'],
  ConfigMap: ['', 'configmaps'],
};

function needed(): Set<string> {
  const out = new Set<string>();
  const add = (group: string, resource: string, verbs: string[]): void => {
    for (const v of verbs) out.add(`${group}/${resource} ${v}`);
  };
  const called = new Set([...source.matchAll(/\.((?:list|read|get|create|replace|patch|delete|deleteCollection)(?:Namespaced|Cluster)\w*)\(/g)].map((m) => m[1]!));
  for (const name of called) {
    const c = CALLS[name];
    assert.ok(c, `src/operator calls ${name}: add what it needs to kustomize/operator/rbac.yaml and to this table`);
    add(...c);
  }
  // The generic client: server-side apply only (PATCH; one that creates the object is authorized as
  // a create too), of the objects a store is made of, each with an ownerReference to its KVStore
  // (blockOwnerDeletion): where OwnerReferencesPermissionEnforcement runs, that takes delete on the
  // object and update on the owner's finalizers.
  assert.deepEqual([...new Set([...source.matchAll(/\bthis\.objects\.(\w+)\(/g)].map((m) => m[1]))], ['patch'], 'the generic client only applies');
  const owner = { name: 'demo', namespace: 'kvs', uid: 'u' };
  const spec = parseSpec({ shards: 1, image: 'kvs:1' });
  const template = loadGroupTemplate();
  const applied = [storeConfig(template, owner, spec), ...[0, 1].flatMap((group) => groupObjects(template, owner, spec, { group, replicas: 3, revision: 'r', joinFrom: 0 }))];
  for (const o of applied) {
    const r = PLURALS[o.kind];
    assert.ok(r, `the operator applies a ${o.kind}: add it to kustomize/operator/rbac.yaml and to this table`);
    add(r[0], r[1], ['patch', 'create', 'delete']);
    assert.ok(o.metadata.ownerReferences?.length, `${o.kind} ${o.metadata.name}: an ownerReference`);
  }
  add(API_GROUP, `${PLURAL}/finalizers`, ['update']);
  return out;
}

test('the operator\'s Role grants exactly what src/operator calls, no verb more', () => {
  // Before: get on kvstores, kvstores/status, statefulsets, services, configmaps,
  // poddisruptionbudgets and pods, which no call of the operator makes (it reads through its
  // informers' caches and writes by server-side apply).
  const role = parseAllDocuments(readFileSync(new URL('../../kustomize/operator/rbac.yaml', import.meta.url), 'utf8'))
    .map((d) => d.toJSON() as { kind: string; rules?: { apiGroups: string[]; resources: string[]; verbs: string[] }[] })
    .find((d) => d.kind === 'Role')!;
  const granted = new Set(role.rules!.flatMap((r) => r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${g}/${res} ${v}`)))));
  const want = needed();
  assert.deepEqual([...granted].filter((g) => !want.has(g)).sort(), [], 'granted, never called');
  assert.deepEqual([...want].filter((w) => !granted.has(w)).sort(), [], 'called, not granted');
});
