// The KVStore CRD (kustomize/crd/crd.yaml): structural, its CEL rules parse and mean what they
// say, its printer columns point at real fields, the example resource is valid, and the operator's
// own spec parser (src/operator/spec.ts) accepts exactly what the CRD accepts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { applyDefaults, celRules, loadCrd, parseCel, structuralProblems, validate, type Schema } from './schema.ts';
import { API_GROUP, KIND, MAX_GROUP_ID, MAX_STORE_NAME, PLURAL, RESERVED_POD_ANNOTATIONS, RESERVED_POD_LABELS, checkTransition, parseSpec } from '../../src/operator/spec.ts';
import { loadGroupTemplate } from '../../src/operator/group-template.ts';
import { groupObjects } from '../../src/operator/objects.ts';
import { prng } from '../partition/prng.ts';
import { renderKustomize } from '../support/pod-specs.ts';

const crd = loadCrd();
const version = crd.spec.versions[0]!;
const root = version.schema.openAPIV3Schema;
const specSchema = root.properties!.spec!;

test('the CRD names match what the operator uses, with a status subresource', () => {
  assert.equal(crd.spec.group, API_GROUP);
  assert.equal(crd.spec.names.kind, KIND);
  assert.equal(crd.spec.names.plural, PLURAL);
  assert.equal(version.name, 'v1alpha1');
  assert.deepEqual(version.subresources?.status, {});
});

test('the schema is structural: every node typed, defaults valid, map lists keyed by required fields', () => {
  assert.deepEqual(structuralProblems(root), []);
});

test('the structural check itself catches an untyped field and a bad default', () => {
  const bad: Schema = { type: 'object', properties: { a: {}, b: { type: 'integer', minimum: 1, default: 0 } } };
  assert.deepEqual(structuralProblems(bad), ['.a: no type', '.b: default <root>: less than 1']);
});

test('every CEL rule parses', () => {
  const rules = celRules(root);
  assert.ok(rules.length >= 5, `expected the CRD's rules, found ${rules.length}`);
  for (const r of rules) assert.doesNotThrow(() => parseCel(r.rule), `${r.path}: ${r.rule}`);
});

test('printer columns point at fields of the schema', () => {
  const cols = version.additionalPrinterColumns ?? [];
  assert.deepEqual(
    cols.map((c) => c.name),
    ['Shards', 'Replicas', 'Phase', 'Moving', 'Ready', 'Image', 'Age'],
  );
  for (const c of cols) {
    if (c.jsonPath.startsWith('.metadata.')) continue;
    const fields = c.jsonPath.replace(/\[\?.*$/, '').split('.').filter(Boolean);
    let s: Schema | undefined = root;
    for (const f of fields) s = s?.properties?.[f];
    assert.ok(s, `${c.name}: ${c.jsonPath} is not in the schema`);
  }
});

const base = { shards: 3, image: 'kvs:1' };
const errorsOf = (spec: unknown, old?: unknown): string[] => validate(specSchema, applyDefaults(specSchema, spec), old === undefined ? undefined : applyDefaults(specSchema, old), '.spec');

test('the example resource is valid and gets the documented defaults', () => {
  const ex = parseYaml(readFileSync(new URL('../../kustomize/examples/kvstore.yaml', import.meta.url), 'utf8')) as { apiVersion: string; kind: string; spec: unknown };
  assert.equal(ex.apiVersion, `${API_GROUP}/v1alpha1`);
  assert.equal(ex.kind, KIND);
  assert.deepEqual(validate(root, applyDefaults(root, ex)), []);
  const d = applyDefaults(specSchema, base) as Record<string, unknown>;
  assert.equal(d.replicas, 3);
  assert.equal(d.partitions, 1024);
  assert.equal(d.placementReplicas, 3);
});

/** spec.podTemplate.spec values: [name, pod spec, the CRD's message when refused]. */
const POD_SPEC_CASES: [string, Record<string, unknown>, string | null][] = [
  ['user volume', { volumes: [{ name: 'certs', secret: { secretName: 's' } }] }, null],
  ['volume named config', { volumes: [{ name: 'config', emptyDir: {} }] }, 'volume names data, config and tmp'],
  ['volume named data', { volumes: [{ name: 'data', emptyDir: {} }] }, 'volume names data, config and tmp'],
  ['sidecar', { containers: [{ name: 'proxy', image: 'envoy:1', args: ['-c', 'x'] }] }, null],
  ['kvs env and mounts', { containers: [{ name: 'kvs', env: [{ name: 'KVS_LOG_LEVEL', value: 'debug' }], volumeMounts: [{ name: 'v', mountPath: '/v' }] }], volumes: [{ name: 'v', emptyDir: {} }] }, null],
  ['kvs image', { containers: [{ name: 'kvs', image: 'other:1' }] }, "the kvs container is the operator's"],
  ['kvs args', { containers: [{ name: 'kvs', args: ['server'] }] }, "the kvs container is the operator's"],
  ['kvs reserved env', { containers: [{ name: 'kvs', env: [{ name: 'KVS_GROUP', value: '1' }] }] }, 'are set by the operator'],
  ['kvs mount on /etc/kvs', { containers: [{ name: 'kvs', volumeMounts: [{ name: 'tmp', mountPath: '/etc/kvs' }] }] }, 'mount paths /data, /etc/kvs and /tmp'],
];

test('CEL and schema rules: table of accepted and refused specs', () => {
  const cases: [string, unknown, unknown, string | null][] = [
    ['minimal', base, undefined, null],
    ['shards 0', { ...base, shards: 0 }, undefined, 'less than 1'],
    ['replicas even', { ...base, replicas: 4 }, undefined, 'replicas must be odd'],
    ['replicas 5', { ...base, replicas: 5 }, undefined, null],
    ['placementReplicas even', { ...base, placementReplicas: 2 }, undefined, 'placementReplicas must be odd'],
    ['no image', { shards: 1 }, undefined, 'image: required'],
    ['unknown field', { ...base, shard: 2 }, undefined, 'unknown field'],
    ['retention typo', { ...base, storage: { retention: 'Keep' } }, undefined, 'must be one of'],
    ['partitions changed', { ...base, partitions: 2048 }, base, 'partitions is immutable'],
    ['partitions kept', { ...base, partitions: 1024, shards: 5 }, base, null],
    ['placementReplicas changed', { ...base, placementReplicas: 5 }, base, 'placementReplicas is immutable'],
    ['shards and replicas changed', { ...base, shards: 7, replicas: 5 }, base, null],
    ['http door on', { ...base, doors: { http: true, resp: true } }, undefined, null],
    ['http door off', { ...base, doors: { http: false } }, undefined, 'doors.http cannot be turned off'],
    ['pod label of the user', { ...base, podTemplate: { metadata: { labels: { team: 'a', 'app.kubernetes.io/version': '1' } } } }, undefined, null],
    ['pod label group', { ...base, podTemplate: { metadata: { labels: { group: 'x' } } } }, undefined, 'are set by the operator'],
    ['pod label managed-by', { ...base, podTemplate: { metadata: { labels: { 'app.kubernetes.io/managed-by': 'helm' } } } }, undefined, 'are set by the operator'],
    ['storage size 1Gi', { ...base, storage: { size: '1Gi' } }, undefined, null],
    ['storage size 0.5Gi', { ...base, storage: { size: '0.5Gi' } }, undefined, null],
    ['storage size 1e3', { ...base, storage: { size: '1e3' } }, undefined, null],
    ['storage size 10', { ...base, storage: { size: 10 } }, undefined, null],
    ['storage size "0"', { ...base, storage: { size: '0' } }, undefined, 'does not match'],
    ['storage size 0Gi', { ...base, storage: { size: '0Gi' } }, undefined, 'does not match'],
    ['storage size 0.0', { ...base, storage: { size: '0.0' } }, undefined, 'does not match'],
    ['storage size +.0Mi', { ...base, storage: { size: '+.0Mi' } }, undefined, 'does not match'],
    ['storage size 00e5', { ...base, storage: { size: '00e5' } }, undefined, 'does not match'],
    ['storage size 0 (integer)', { ...base, storage: { size: 0 } }, undefined, 'less than 1'],
    ['storage size -1Gi', { ...base, storage: { size: '-1Gi' } }, undefined, 'does not match'],
    ['shards above partitions', { ...base, shards: 3, partitions: 2 }, undefined, 'shards cannot exceed partitions'],
    ['shards equal to partitions', { ...base, shards: 3, partitions: 3 }, undefined, null],
    ['shards raised above partitions', { ...base, shards: 5, partitions: 4 }, { ...base, shards: 3, partitions: 4 }, 'shards cannot exceed partitions'],
    ...POD_SPEC_CASES.map(([name, podSpec, want]): [string, unknown, unknown, string | null] => [`pod spec: ${name}`, { ...base, podTemplate: { spec: podSpec } }, undefined, want]),
    ['pod annotation address', { ...base, podTemplate: { metadata: { annotations: { 'kvs.sharded-kvs.dev/address': 'a:1' } } } }, undefined, 'are set by the operator'],
  ];
  for (const [name, spec, old, want] of cases) {
    const errs = errorsOf(spec, old);
    if (want === null) assert.deepEqual(errs, [], name);
    else assert.ok(errs.some((e) => e.includes(want)), `${name}: expected "${want}" in ${JSON.stringify(errs)}`);
  }
});

test('the operator parser accepts exactly the specs the CRD accepts (random specs, seeded)', () => {
  const rng = prng(1301);
  const pick = <T>(xs: T[]): T => xs[rng.below(xs.length)]!;
  for (let i = 0; i < 2000; i++) {
    const spec: Record<string, unknown> = {};
    if (rng.below(10) > 0) spec.shards = pick([0, 1, 2, 3, 30, 31, 2.5, '3']);
    if (rng.below(2)) spec.replicas = pick([1, 2, 3, 5, 8, 9, 11, -1]);
    if (rng.below(3) === 0) spec.placementReplicas = pick([1, 3, 4]);
    if (rng.below(3) === 0) spec.partitions = pick([1, 2, 1024, 0, 65537]);
    if (rng.below(10) > 0) spec.image = pick(['kvs:1', '', 7]);
    if (rng.below(4) === 0) {
      spec.storage = pick([{ size: '1Gi' }, { retention: 'Delete' }, { retention: 'x' }, { size: 5 }, { size: '' }, { size: 'banana' }, { size: '-5' }, { size: -5 }, { size: '1.5Gi' }, { size: '2e3' }, { size: '0' }, { size: 0 }, { size: '0Gi' }, { size: '0.0' }, { size: '.0' }, { size: '0.01Ki' }, { storageClassName: '' }, { storageClassName: 'ssd' }, { storageClassName: 5 }]);
    }
    if (rng.below(5) === 0) spec.resources = pick([{ requests: { cpu: '500m', memory: '1Gi' } }, { limits: { cpu: '' } }, { requests: { cpu: 'lots' } }, { limits: { memory: 2 } }, { requests: { cpu: -1 } }]);
    if (rng.below(4) === 0) spec.doors = pick([{ resp: true }, { grpc: 'yes' }, { http: false }, { http: true, grpc: true }]);
    if (rng.below(5) === 0) spec.tracing = pick([true, 0]);
    if (rng.below(5) === 0) {
      spec.podTemplate = pick([{ metadata: { labels: { team: 'a' } } }, ...RESERVED_POD_LABELS.map((k) => ({ metadata: { labels: { [k]: 'x' } } })), ...RESERVED_POD_ANNOTATIONS.map((k) => ({ metadata: { annotations: { [k]: 'x' } } })), { metadata: { annotations: { note: 'x' } } }, { spec: { nodeSelector: { disk: 'ssd' } } }, ...POD_SPEC_CASES.map(([, podSpec]) => ({ spec: podSpec }))]);
    }
    const crdOk = errorsOf(spec).length === 0;
    let parsed = true;
    try {
      parseSpec(spec);
    } catch {
      parsed = false;
    }
    assert.equal(parsed, crdOk, `spec ${JSON.stringify(spec)}: CRD ${crdOk ? 'accepts' : `refuses (${errorsOf(spec).join('; ')})`}, parser ${parsed ? 'accepts' : 'refuses'}`);
  }
});

test('the operator parser refuses a zero storage size, naming the field', () => {
  for (const size of ['0', '0Gi', '0.0', '+0', '.0', '0.', '000Mi', '0e3', '0.000Ki', 0]) {
    assert.throws(() => parseSpec({ ...base, storage: { size } }), (e: Error) => e.name === 'SpecError' && /^spec\.storage\.size must be .*greater than zero/.test(e.message), `size ${JSON.stringify(size)}`);
  }
  for (const size of ['1', '1Gi', '0.5Gi', '.5', '0.01Ki', '1e3', '100Mi', 1]) assert.equal(parseSpec({ ...base, storage: { size } }).storage.size, size);
  // Resource requests may still be zero (a quantity, not negative).
  assert.deepEqual(parseSpec({ ...base, resources: { requests: { cpu: '0' } } }).resources, { requests: { cpu: '0' } });
});

test('store names: the CRD and the operator refuse names too long for its objects or with dots, with a clear message', () => {
  const resource = (name: string): unknown => ({ apiVersion: `${API_GROUP}/v1alpha1`, kind: KIND, metadata: { name }, spec: base });
  const longest = `s${'x'.repeat(MAX_STORE_NAME - 2)}1`;
  const cases: [string, string | null][] = [
    ['demo', null],
    ['a', null],
    ['orders-eu-1', null],
    [longest, null],
    [`${longest}x`, 'at most 40 characters'],
    ['orders-service-production-eu-west-1-primary', 'at most 40 characters'],
    ['demo.v2', 'DNS-1035'],
    ['1demo', 'DNS-1035'],
    ['demo-', 'DNS-1035'],
    ['Demo', 'DNS-1035'],
  ];
  for (const [name, want] of cases) {
    // Before: neither the CRD nor the operator looked at the name.
    const errs = validate(root, applyDefaults(root, resource(name)));
    let parsed: string | null = null;
    try {
      parseSpec(base, name);
    } catch (e) {
      parsed = (e as Error).message;
    }
    if (want === null) {
      assert.deepEqual(errs, [], name);
      assert.equal(parsed, null, name);
    } else {
      assert.ok(errs.some((e) => e.includes(want)), `${name}: CRD: expected "${want}" in ${JSON.stringify(errs)}`);
      assert.ok(parsed?.includes(want) && parsed.startsWith('metadata.name'), `${name}: operator: ${parsed}`);
    }
  }
  // The longest name with the largest documented shard group id: every object the operator makes fits.
  const spec = parseSpec(base, longest);
  for (const group of [0, 1, MAX_GROUP_ID]) {
    const objs = groupObjects(loadGroupTemplate(), { name: longest, namespace: 'kvs', uid: 'u' }, spec, { group, replicas: 9, revision: 'r', joinFrom: 0 });
    const sts = objs.find((o) => o.kind === 'StatefulSet')!;
    // controller-revision-hash=<StatefulSet name>-<hash of up to 10 characters>: a label value (<= 63).
    assert.ok(sts.metadata.name.length + 1 + 10 <= 63, `${sts.metadata.name}: revision label too long`);
    assert.ok(`${sts.metadata.name}-8`.length <= 63, 'pod name / hostname');
    for (const o of objs) assert.match(o.metadata.name, /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/, `${o.kind} ${o.metadata.name}`);
  }
});

test('the operator refuses the transitions the CRD refuses', () => {
  const a = parseSpec(base);
  assert.throws(() => checkTransition(a, parseSpec({ ...base, partitions: 64 })), /partitions is immutable/);
  assert.throws(() => checkTransition(a, parseSpec({ ...base, placementReplicas: 5 })), /placementReplicas is immutable/);
  assert.doesNotThrow(() => checkTransition(a, parseSpec({ ...base, shards: 4, replicas: 5, image: 'kvs:2' })));
});

test('kustomize/operator renders on its own: it creates the namespace it installs into, and the Deployment runs as the bound service account', () => {
  const docs = renderKustomize(new URL('../../kustomize/operator/', import.meta.url).pathname);
  const byKind = (kind: string) => docs.filter((d) => d.kind === kind);
  assert.deepEqual(docs.map((d) => d.kind).sort(), ['Deployment', 'Namespace', 'Role', 'RoleBinding', 'ServiceAccount']);
  // A fresh cluster has no namespace kvs: `kubectl apply -k kustomize/operator` must bring it.
  const ns = byKind('Namespace')[0]!.metadata.name;
  for (const d of docs) if (d.kind !== 'Namespace') assert.equal(d.metadata.namespace, ns, `${d.kind} ${d.metadata.name}`);
  const sa = byKind('ServiceAccount')[0]!.metadata.name;
  const binding = byKind('RoleBinding')[0] as unknown as { roleRef: { name: string }; subjects: { kind: string; name: string; namespace: string }[] };
  assert.equal(binding.roleRef.name, byKind('Role')[0]!.metadata.name);
  assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: sa, namespace: ns }]);
  const pod = (byKind('Deployment')[0] as unknown as { spec: { template: { spec: { serviceAccountName: string; containers: { args: string[]; env: { name: string }[] }[] } } } }).spec.template.spec;
  assert.equal(pod.serviceAccountName, sa);
  assert.equal(pod.containers[0]!.args[0], 'operator');
  assert.deepEqual(pod.containers[0]!.env.map((e) => e.name), ['POD_NAME', 'POD_NAMESPACE']);
});

test('the CRD is installed on its own (kustomize/crd): deleting either operator install leaves it, and every KVStore, alone', () => {
  // Before: kustomize/operator and overlays/operator-tracing both rendered the CRD, so
  // `kubectl delete -k` of either deleted it, and with it every KVStore of every namespace.
  const kustomize = (dir: string): string => new URL(`../../kustomize/${dir}/`, import.meta.url).pathname;
  for (const install of ['operator', 'overlays/operator-tracing']) {
    const cluster = renderKustomize(kustomize(install)).filter((d) => !d.metadata.namespace && d.kind !== 'Namespace');
    assert.deepEqual(cluster.map((d) => `${d.kind} ${d.metadata.name}`), [], `${install} renders cluster-scoped objects a second install shares`);
  }
  const crds = renderKustomize(kustomize('crd'));
  assert.deepEqual(crds.map((d) => `${d.kind} ${d.metadata.name}`), [`CustomResourceDefinition ${PLURAL}.${API_GROUP}`]);
  assert.deepEqual(crds[0], crd as unknown);
});

test('the kind example fits a one-node kind cluster of 2 CPUs beside the operator; kvstore.yaml does not', () => {
  // kind's control plane requests 950m of a node's CPUs (etcd 100m, kube-apiserver 250m,
  // controller-manager 200m, scheduler 100m, two CoreDNS 100m each, kindnet 100m).
  const free = 2000 - 950;
  const milli = (q: string | number | undefined): number => (q === undefined ? 0 : typeof q === 'number' ? q * 1000 : q.endsWith('m') ? Number(q.slice(0, -1)) : Number(q) * 1000);
  type Pod = { affinity?: { podAntiAffinity?: { requiredDuringSchedulingIgnoredDuringExecution?: unknown[] } }; containers: { resources?: { requests?: { cpu?: string } } }[] };
  const podCpu = (p: Pod): number => p.containers.reduce((s, c) => s + milli(c.resources?.requests?.cpu), 0);
  const operator = renderKustomize(new URL('../../kustomize/operator/', import.meta.url).pathname).find((d) => d.kind === 'Deployment')!;
  const operatorCpu = (operator.spec as { replicas: number }).replicas * podCpu((operator.spec as { template: { spec: Pod } }).template.spec);
  const storeOf = (file: string): { cpu: number; antiAffinity: boolean } => {
    const ex = parseYaml(readFileSync(new URL(`../../kustomize/examples/${file}`, import.meta.url), 'utf8')) as { metadata: { name: string }; spec: Record<string, unknown> };
    assert.deepEqual(validate(root, applyDefaults(root, ex)), [], file);
    const spec = parseSpec(ex.spec, ex.metadata.name);
    const owner = { name: ex.metadata.name, namespace: 'kvs', uid: 'u' };
    let cpu = 0;
    let antiAffinity = false;
    for (let group = 0; group <= spec.shards; group++) {
      const replicas = group === 0 ? spec.placementReplicas : spec.replicas;
      const sts = groupObjects(loadGroupTemplate(), owner, spec, { group, replicas, revision: 'r', joinFrom: 0 }).find((o) => o.kind === 'StatefulSet')!;
      const pod = (sts.spec as { template: { spec: Pod } }).template.spec;
      cpu += replicas * podCpu(pod);
      antiAffinity ||= (pod.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.length ?? 0) > 0;
    }
    return { cpu, antiAffinity };
  };
  const kind = storeOf('kvstore-kind.yaml');
  assert.ok(kind.cpu + operatorCpu <= free, `kvstore-kind.yaml requests ${kind.cpu}m + the operator's ${operatorCpu}m: more than the ${free}m a 2-CPU kind node has free`);
  assert.equal(kind.antiAffinity, false, 'kvstore-kind.yaml keeps one replica of a group per node: on one node, a group gets one replica');
  const full = storeOf('kvstore.yaml');
  assert.ok(full.cpu + operatorCpu > free && full.antiAffinity, 'kvstore.yaml is the multi-node example (its comment sends kind users to kvstore-kind.yaml)');
});
