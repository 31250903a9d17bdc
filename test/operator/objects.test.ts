// A store's objects (src/operator/objects.ts): the group template of kustomize/base/group read
// and instantiated by the operator is what `kubectl kustomize` renders from the same files (one
// source for both), with the operator's additions on top; and the pods they describe start as the
// right replicas: their environment and settings file, through the server's own configuration
// loader, give each pod its id, group, peers, placement group and whether it joins.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { loadGroupTemplate } from '../../src/operator/group-template.ts';
import { dnsSuffix, groupObjects, instantiate, podAddress, storeConfig, type K8sObject } from '../../src/operator/objects.ts';
import { RESERVED_POD_ANNOTATIONS, RESERVED_POD_LABELS, parseSpec } from '../../src/operator/spec.ts';
import { loadConfig } from '../../src/server/config.ts';
import { containerEnv, type EnvVar } from './pod-env.ts';

const template = loadGroupTemplate();
const owner = { name: 'kv', namespace: 'prod', uid: 'u-1' };
const spec = parseSpec({ shards: 2, replicas: 3, image: 'kvs:1', storage: { retention: 'Delete', size: '5Gi' }, doors: { resp: true } });

type Container = { name: string; image: string; args: string[]; env: EnvVar[]; ports: { name: string }[]; resources: unknown; securityContext: { capabilities: { add?: string[] } } };
type Sts = K8sObject & { spec: { replicas: number; selector: { matchLabels: Record<string, string> }; updateStrategy: Record<string, unknown>; persistentVolumeClaimRetentionPolicy: Record<string, string>; template: { metadata: { labels: Record<string, string>; annotations: Record<string, string> }; spec: { containers: Container[]; volumes: { name: string; configMap?: { name: string } }[]; affinity?: unknown; nodeSelector?: unknown } }; volumeClaimTemplates: { metadata: { labels: Record<string, string> }; spec: { resources: { requests: { storage: string } } } }[] } };

const stsOf = (objs: K8sObject[]): Sts => objs.find((o) => o.kind === 'StatefulSet') as Sts;

test('one source: the template as the operator instantiates it is what kubectl kustomize renders', () => {
  const rendered = parseAllDocuments(execFileSync('kubectl', ['kustomize', new URL('../../kustomize/base', import.meta.url).pathname], { encoding: 'utf8' })).map((d) => d.toJSON() as K8sObject);
  for (const values of [
    { name: 'shard-1', component: 'shard', placementSet: 'placement', bootstrapGroups: '' },
    { name: 'placement', component: 'placement', placementSet: '', bootstrapGroups: 'shard-0,shard-1,shard-2' },
  ] as const) {
    const mine = instantiate(template, values);
    // What the base adds to every object: its namespace and the image name.
    for (const o of mine) o.metadata.namespace = 'kvs';
    stsOf(mine).spec.template.spec.containers[0]!.image = 'localhost/sharded-kvs:0.1.0';
    const theirs = rendered.filter((o) => o.metadata.name === values.name && o.kind !== 'ConfigMap');
    const byKind = (l: K8sObject[]) => Object.fromEntries(l.map((o) => [o.kind, o]));
    assert.deepEqual(byKind(mine), byKind(theirs), values.name);
  }
  // The settings file too (the operator's copy differs only in name, labels and the doors it turns off).
  const base = rendered.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'kvs-config') as K8sObject & { data: Record<string, string> };
  const all = storeConfig(template, owner, parseSpec({ shards: 1, image: 'x', doors: { resp: true, grpc: true } })) as K8sObject & { data: Record<string, string> };
  assert.deepEqual(parseAllDocuments(all.data['kvs.yaml']!)[0]!.toJSON(), parseAllDocuments(base.data['kvs.yaml']!)[0]!.toJSON());
});

test('the operator adds: store labels and owner, OnDelete, retention, founders, group id, image, storage, doors', () => {
  const objs = groupObjects(template, owner, spec, { group: 4, replicas: 5, revision: 'r1', joinFrom: 3 });
  assert.deepEqual(objs.map((o) => `${o.kind}/${o.metadata.name}`), ['Service/kv-shard-4', 'PodDisruptionBudget/kv-shard-4', 'StatefulSet/kv-shard-4']);
  for (const o of objs) {
    assert.equal(o.metadata.namespace, 'prod');
    assert.equal(o.metadata.labels!['kvs.sharded-kvs.dev/store'], 'kv');
    assert.equal(o.metadata.labels!.group, 'kv-shard-4');
    assert.equal((o.metadata.ownerReferences![0] as { uid: string }).uid, 'u-1');
  }
  const sts = stsOf(objs);
  assert.equal(sts.spec.replicas, 5);
  assert.deepEqual(sts.spec.updateStrategy, { type: 'OnDelete' });
  assert.deepEqual(sts.spec.persistentVolumeClaimRetentionPolicy, { whenScaled: 'Delete', whenDeleted: 'Delete' });
  assert.deepEqual(sts.metadata.annotations, { 'kvs.sharded-kvs.dev/revision': 'r1', 'kvs.sharded-kvs.dev/join-from': '3' });
  assert.deepEqual(sts.spec.selector.matchLabels, { 'app.kubernetes.io/name': 'kvs', group: 'kv-shard-4' });
  const c = sts.spec.template.spec.containers[0]!;
  assert.equal(c.image, 'kvs:1');
  assert.deepEqual(c.ports.map((p) => p.name), ['native', 'resp', 'http']);
  assert.deepEqual(sts.spec.template.spec.volumes.find((v) => v.name === 'config')!.configMap, { name: 'kv-config' });
  assert.equal(sts.spec.volumeClaimTemplates[0]!.spec.resources.requests.storage, '5Gi');
  assert.equal(sts.spec.volumeClaimTemplates[0]!.metadata.labels['kvs.sharded-kvs.dev/group-id'], '4');
  // The template's resources unless the spec gives some; anti-affinity from the template.
  assert.deepEqual(c.resources, (stsOf(instantiate(template, { name: 'x', component: 'shard', placementSet: '', bootstrapGroups: '' })).spec.template.spec.containers[0]!).resources);
  assert.ok(sts.spec.template.spec.affinity);
  const cm = storeConfig(template, owner, spec) as K8sObject & { data: Record<string, string> };
  assert.equal(cm.metadata.name, 'kv-config');
  assert.match(cm.data['kvs.yaml']!, /^resp: /m);
  assert.doesNotMatch(cm.data['kvs.yaml']!, /^grpc: /m);
});

test('tracing applies the tracing overlay\'s patch; pod template overrides merge into every pod', () => {
  const traced = parseSpec({ shards: 1, image: 'kvs:1', tracing: true, resources: { requests: { cpu: '1' } }, podTemplate: { metadata: { labels: { team: 'a' } }, spec: { nodeSelector: { disk: 'ssd' }, affinity: {} } } });
  const sts = stsOf(groupObjects(template, owner, traced, { group: 1, replicas: 3, revision: 'r2', joinFrom: 0 }));
  const c = sts.spec.template.spec.containers[0]!;
  assert.ok(c.env.some((e) => e.name === 'KVS_TRACE' && e.value === 'true'));
  assert.deepEqual(c.securityContext.capabilities.add, ['BPF', 'PERFMON', 'NET_ADMIN']);
  assert.deepEqual(c.resources, { requests: { cpu: '1' } });
  assert.equal(sts.spec.template.metadata.labels.team, 'a');
  assert.deepEqual(sts.spec.template.spec.nodeSelector, { disk: 'ssd' });
  assert.deepEqual(sts.spec.template.spec.affinity, {});
});

test('storageClassName "" (no dynamic provisioning, as Kubernetes reads it) reaches the claim template', () => {
  const claimOf = (storage: object): Record<string, unknown> => stsOf(groupObjects(template, owner, parseSpec({ shards: 1, image: 'kvs:1', storage }), { group: 1, replicas: 3, revision: 'r1', joinFrom: 0 })).spec.volumeClaimTemplates[0]!.spec as Record<string, unknown>;
  assert.equal(claimOf({ storageClassName: '' }).storageClassName, '');
  assert.equal(claimOf({ storageClassName: 'ssd' }).storageClassName, 'ssd');
  assert.equal('storageClassName' in claimOf({}), false, 'the cluster default class');
});

test('the pod labels and annotations the operator sets are exactly the ones a pod template may not override', () => {
  const sts = stsOf(groupObjects(template, owner, spec, { group: 1, replicas: 3, revision: 'r1', joinFrom: 0 }));
  assert.deepEqual(Object.keys(sts.spec.template.metadata.labels).sort(), [...RESERVED_POD_LABELS].sort());
  for (const k of Object.keys(sts.spec.selector.matchLabels)) assert.ok((RESERVED_POD_LABELS as readonly string[]).includes(k), `selector label ${k}`);
  for (const k of Object.keys(sts.spec.template.metadata.annotations)) assert.ok((RESERVED_POD_ANNOTATIONS as readonly string[]).includes(k), `annotation ${k}`);
});

/** The server configuration a pod of the operator's StatefulSet starts with (the kubelet's env and the mounted settings). */
function podConfig(group: number, joinFrom: number, ordinal: number, hasData: boolean): ReturnType<typeof loadConfig> {
  const sts = stsOf(groupObjects(template, owner, spec, { group, replicas: 5, revision: 'r1', joinFrom }));
  const c = sts.spec.template.spec.containers[0]!;
  assert.deepEqual(c.args, ['server']);
  const root = mkdtempSync(join(tmpdir(), 'kvs-pod-'));
  const data = join(root, 'data');
  mkdirSync(data);
  if (hasData) writeFileSync(join(data, 'data.mdb'), '');
  const settings = join(root, 'kvs.yaml');
  writeFileSync(settings, (storeConfig(template, owner, spec) as K8sObject & { data: Record<string, string> }).data['kvs.yaml']!);
  const env = containerEnv({ name: `${sts.metadata.name}-${ordinal}`, namespace: owner.namespace }, c.env);
  assert.equal(env.KVS_CONFIG, '/etc/kvs/kvs.yaml');
  return loadConfig({ data }, { ...env, KVS_CONFIG: settings });
}

test('the pods start as the right replicas: founders list the group, later pods join when empty, recover when not', () => {
  const at = (g: number, o: number) => podAddress('kv', 'prod', g, o);
  assert.equal(dnsSuffix('prod'), 'prod.svc.cluster.local');
  const founder = podConfig(1, 3, 1, false);
  assert.deepEqual([founder.id, founder.group, founder.join], [102, 1, false]);
  assert.deepEqual(founder.replicas, [0, 1, 2].map((o) => ({ id: 101 + o, address: at(1, o) })));
  assert.deepEqual(founder.placement, [0, 1, 2].map((o) => at(0, o)));
  assert.equal(founder.resp, '0.0.0.0:6379');
  assert.equal(founder.grpc, undefined);
  const joining = podConfig(1, 0, 3, false);
  assert.deepEqual([joining.id, joining.join, joining.replicas], [104, true, [{ id: 104, address: at(1, 3) }]]);
  const recovering = podConfig(1, 0, 0, true);
  assert.deepEqual([recovering.id, recovering.join, recovering.replicas], [101, false, [{ id: 101, address: at(1, 0) }]]);
  const placement = podConfig(0, 3, 2, true);
  assert.deepEqual([placement.id, placement.group, placement.placement, placement.replicas.length], [3, 0, [], 3]);
});

test('a missing or incomplete template stops the operator with the file it lacks', () => {
  const root = mkdtempSync(join(tmpdir(), 'kvs-template-'));
  assert.throws(() => loadGroupTemplate(pathToFileURL(`${root}/`)), /cannot read .*base\/group\/kustomization\.yaml/);
  cpSync(new URL('../../kustomize/', import.meta.url), root, { recursive: true });
  writeFileSync(join(root, 'base/group/kustomization.yaml'), 'resources: [statefulset.yaml]\n');
  assert.throws(() => loadGroupTemplate(pathToFileURL(`${root}/`)), /lists StatefulSet; the operator needs/);
  writeFileSync(join(root, 'base/group/kustomization.yaml'), 'resources: [: bad\n');
  assert.throws(() => loadGroupTemplate(pathToFileURL(`${root}/`)), /not valid YAML/);
});
