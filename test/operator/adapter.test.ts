// The operator's Kubernetes adapter (src/operator/controller.ts, lease.ts) on @kubernetes/client-node
// against a fake API server speaking the REST protocol (fake-apiserver.ts), with a StatefulSet
// shim that runs pods (kubelet.ts) and an in-memory store (model-store.ts). Checks the requests
// themselves (paths, verbs, content types, field manager), watch resync after 410 Gone, the
// status subresource, events, the Lease, /metrics and /healthz, and that a restarted operator
// finishes the membership change its predecessor was killed in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KubeConfig } from '@kubernetes/client-node';
import { loadXxh64 } from '../../src/partition/index.ts';
import { Operator } from '../../src/operator/controller.ts';
import { parseSpec, type KVStoreStatus } from '../../src/operator/spec.ts';
import { settingsHash, templateHash, type K8sObject } from '../../src/operator/objects.ts';
import { loadGroupTemplate, type GroupTemplate } from '../../src/operator/group-template.ts';
import { templateRevision } from '../../src/operator/reconcile.ts';
import { FakeApiServer } from './fake-apiserver.ts';
import { StatefulSetShim } from './kubelet.ts';
import { ModelStore } from './model-store.ts';
import { forbidden } from './rbac.ts';
import { waitFor } from '../support/wait.ts';
import { createLogger } from '../../src/log/logger.ts';

const NS = 'kvs';
const h64 = await loadXxh64();

function kubeconfig(server: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({ clusters: [{ name: 'fake', server, skipTLSVerify: true }], users: [{ name: 'op' }], contexts: [{ name: 'fake', cluster: 'fake', user: 'op', namespace: NS }], currentContext: 'fake' });
  return kc;
}

async function setup(spec: Record<string, unknown>) {
  const api = new FakeApiServer();
  const url = await api.start();
  const shim = new StatefulSetShim(api, NS);
  const store = new ModelStore(h64);
  api.put('kvstores', NS, { apiVersion: 'kvs.sharded-kvs.dev/v1alpha1', kind: 'KVStore', metadata: { name: 'demo' }, spec });
  const operators: Operator[] = [];
  // A lease of 6 s (renewed every 100 ms): a second or two of a loaded machine not running the
  // holder's renewals does not hand the lease to another operator (which the tests assert never
  // happens while the holder runs). A stopped operator hands it over at once, without expiry.
  const operator = (identity: string, s = store, template?: GroupTemplate, onLeadershipLost?: () => void): Operator => {
    const op = new Operator(kubeconfig(url), { namespace: NS, identity, clusterDomain: 'cluster.local', store: s, ...(template ? { template } : {}), ...(onLeadershipLost ? { onLeadershipLost } : {}), leaseDurationS: 6, leaseRenewMs: 100, resyncMs: 100, httpPort: 0, httpHost: '127.0.0.1', log: createLogger({ format: 'json', write: () => undefined }) });
    operators.push(op);
    return op;
  };
  const status = (): KVStoreStatus => (api.get('kvstores', NS, 'demo')!.status ?? {}) as KVStoreStatus;
  const ready = (what: string) => waitFor(what, () => status().phase === 'Ready' && status().observedGeneration === api.get('kvstores', NS, 'demo')!.metadata.generation, 60_000);
  const close = async () => {
    for (const op of operators) await op.stop();
    await api.stop();
    // RBAC limited to what is used: every request made is one the Role grants.
    assert.deepEqual(forbidden(api.requests), []);
  };
  return { api, shim, store, operator, status, ready, close };
}

test('creation: server-side apply with field manager kvctl, status subresource, events, lease, watches', async () => {
  const t = await setup({ shards: 2, replicas: 3, image: 'kvs:1' });
  try {
    const op = t.operator('op-a');
    await op.start();
    await t.ready('the store to be Ready');
    const reqs = t.api.requests;
    // Server-side apply of every group's three objects.
    const applies = reqs.filter((r) => r.method === 'PATCH' && r.contentType === 'application/apply-patch+yaml');
    assert.ok(applies.length >= 9);
    for (const r of applies) {
      assert.equal(r.query.fieldManager, 'kvctl');
      assert.equal(r.query.force, 'true');
      assert.equal(r.status < 300, true, `${r.path}: ${r.status}`);
    }
    const paths = new Set(applies.map((r) => r.path));
    for (const g of ['demo-placement', 'demo-shard-1', 'demo-shard-2']) {
      assert.ok(paths.has(`/apis/apps/v1/namespaces/${NS}/statefulsets/${g}`));
      assert.ok(paths.has(`/api/v1/namespaces/${NS}/services/${g}`));
      assert.ok(paths.has(`/apis/policy/v1/namespaces/${NS}/poddisruptionbudgets/${g}`));
    }
    const sts = t.api.get('statefulsets', NS, 'demo-shard-1')!;
    assert.deepEqual((sts.metadata.managedFields as { manager: string }[])[0]!.manager, 'kvctl');
    assert.equal((sts.spec as { updateStrategy: { type: string } }).updateStrategy.type, 'OnDelete');
    // The settings ConfigMap written is the one whose hash the pod template and the revision carry.
    const settings = settingsHash(t.api.get('configmaps', NS, 'demo-config')! as unknown as K8sObject);
    assert.equal((sts.spec as { template: { metadata: { annotations: Record<string, string> } } }).template.metadata.annotations['kvs.sharded-kvs.dev/settings-hash'], settings);
    assert.equal((sts.spec as { template: { metadata: { annotations: Record<string, string> } } }).template.metadata.annotations['kvs.sharded-kvs.dev/template-hash'], templateHash(loadGroupTemplate()));
    assert.equal((sts.metadata.annotations as Record<string, string>)['kvs.sharded-kvs.dev/revision'], templateRevision(parseSpec({ shards: 2, replicas: 3, image: 'kvs:1' }), settings, templateHash(loadGroupTemplate())));
    assert.deepEqual((sts.metadata.ownerReferences as { kind: string; name: string }[]).map((o) => [o.kind, o.name]), [['KVStore', 'demo']]);
    // Status only through the status subresource, as a JSON merge patch.
    const statusWrites = reqs.filter((r) => r.path.startsWith(`/apis/kvs.sharded-kvs.dev/v1alpha1/namespaces/${NS}/kvstores/`) && r.method !== 'GET');
    assert.ok(statusWrites.length > 0);
    for (const r of statusWrites) {
      assert.equal(r.method, 'PATCH');
      assert.equal(r.path, `/apis/kvs.sharded-kvs.dev/v1alpha1/namespaces/${NS}/kvstores/demo/status`);
      assert.equal(r.contentType, 'application/merge-patch+json');
    }
    // Watches on the three kinds, each from a list's resourceVersion, with the label selector.
    for (const p of [`/apis/kvs.sharded-kvs.dev/v1alpha1/namespaces/${NS}/kvstores`, `/apis/apps/v1/namespaces/${NS}/statefulsets`, `/api/v1/namespaces/${NS}/pods`]) {
      const w = reqs.find((r) => r.path === p && r.query.watch === 'true');
      assert.ok(w, `no watch on ${p}`);
      assert.match(w.query.resourceVersion ?? '', /^\d+$/);
      if (!p.endsWith('kvstores')) assert.equal(w.query.labelSelector, 'app.kubernetes.io/managed-by=kvctl');
    }
    // The lease is created, then renewed with PUT.
    assert.ok(reqs.some((r) => r.method === 'POST' && r.path === `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases`));
    assert.ok(reqs.some((r) => r.method === 'PUT' && r.path === `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/kvctl`));
    assert.equal((t.api.get('leases', NS, 'kvctl')!.spec as { holderIdentity: string }).holderIdentity, 'op-a');
    // Events on the resource.
    const events = t.api.list('events', NS) as unknown as { reason: string; involvedObject: { kind: string; name: string } }[];
    assert.ok(events.some((e) => e.reason === 'Created' && e.involvedObject.kind === 'KVStore' && e.involvedObject.name === 'demo'));
    // The status tells the truth.
    const st = t.status();
    assert.deepEqual(
      st.groups!.map((g) => [g.name, g.replicas, g.readyReplicas, g.leader]),
      [
        ['demo-placement', 3, 3, 'demo-placement-0'],
        ['demo-shard-1', 3, 3, 'demo-shard-1-0'],
        ['demo-shard-2', 3, 3, 'demo-shard-2-0'],
      ],
    );
    assert.equal(st.groups!.filter((g) => g.role === 'shard').reduce((n, g) => n + g.partitions!, 0), 1024);
    assert.equal(st.conditions!.find((c) => c.type === 'Ready')!.status, 'True');
    // /healthz and /metrics.
    const base = `http://127.0.0.1:${op.httpPort}`;
    assert.equal(await (await fetch(`${base}/healthz`)).text(), 'ok\n');
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /^kvctl_leader 1$/m);
    assert.match(metrics, /^kvctl_actions_total\{kind="init-cluster"\} 1$/m);
    assert.match(metrics, /^kvctl_kvstore_phase\{kvstore="demo",phase="Ready"\} 1$/m);
  } finally {
    await t.close();
  }
});

test('watch history compacted (410 Gone): the informers relist and a later change is still seen', async () => {
  const t = await setup({ shards: 1, replicas: 1, image: 'kvs:1' });
  try {
    await t.operator('op-a').start();
    await t.ready('the store to be Ready');
    const before = t.api.requests.length;
    t.api.compact();
    // Each informer re-watches from its old version, gets the 410 ERROR event, and lists again.
    await waitFor('a relist of KVStores', () => t.api.requests.slice(before).some((r) => r.path.endsWith('/kvstores') && r.method === 'GET' && r.query.watch !== 'true'));
    await waitFor('all three watches answered 410 Gone', () => t.api.expired >= 3);
    const kv = t.api.get('kvstores', NS, 'demo')!;
    t.api.put('kvstores', NS, { ...kv, spec: { ...(kv.spec as object), shards: 2 } });
    await waitFor('the new shard group', () => t.api.get('statefulsets', NS, 'demo-shard-2'));
    await t.ready('the store to be Ready with 2 shards');
    assert.deepEqual(t.store.calls, ['init 1', 'reshard 1,2']);
  } finally {
    await t.close();
  }
});

test('two operators: one holds the lease and acts; when it stops the other takes over', async () => {
  const t = await setup({ shards: 1, replicas: 1, image: 'kvs:1' });
  try {
    const a = t.operator('op-a');
    await a.start();
    await waitFor('op-a to lead', () => a.isLeader);
    const b = t.operator('op-b');
    await b.start();
    await t.ready('the store to be Ready');
    assert.equal(b.isLeader, false);
    await a.stop();
    await waitFor('op-b to lead', () => b.isLeader, 20_000);
    assert.equal((t.api.get('leases', NS, 'kvctl')!.spec as { holderIdentity: string }).holderIdentity, 'op-b');
    const kv = t.api.get('kvstores', NS, 'demo')!;
    t.api.put('kvstores', NS, { ...kv, spec: { ...(kv.spec as object), image: 'kvs:2' } });
    await waitFor('the upgrade by op-b', () => t.status().groups?.every((g) => g.image === 'kvs:2') && t.status().phase === 'Ready', 60_000);
  } finally {
    await t.close();
  }
});

// A step already under way (a store call waits up to its timeout) would run on beside the next
// leader: an operator that loses the Lease it held says so, and `kvs operator` exits on it.
test('an operator that loses the Lease while leading tells its owner (kvs operator exits); one stopped does not', async () => {
  const t = await setup({ shards: 1, replicas: 1, image: 'kvs:1' });
  try {
    let lost = 0;
    const a = t.operator('op-a', t.store, undefined, () => lost++);
    await a.start();
    await waitFor('op-a to lead', () => a.isLeader);
    // Another operator's write wins the Lease (op-a's next renewal finds it held by op-z).
    const lease = t.api.get('leases', NS, 'kvctl')!;
    t.api.put('leases', NS, { ...lease, spec: { ...(lease.spec as object), holderIdentity: 'op-z', renewTime: new Date().toISOString().replace('Z', '000Z') } });
    await waitFor('op-a to step down', () => !a.isLeader);
    await waitFor('op-a to report the loss', () => lost === 1);
    await a.stop();
    assert.equal(lost, 1);

    let lostB = 0;
    const b = t.operator('op-b', t.store, undefined, () => lostB++);
    t.api.remove('leases', NS, 'kvctl');
    await b.start();
    await waitFor('op-b to lead', () => b.isLeader);
    await b.stop();
    assert.equal(lostB, 0, 'a stop hands the Lease over: not a loss');
  } finally {
    await t.close();
  }
});

test('an operator killed during a membership change: the next one finishes it first', async () => {
  const t = await setup({ shards: 1, replicas: 3, image: 'kvs:1' });
  try {
    const a = t.operator('op-a');
    await a.start();
    await t.ready('the store to be Ready');
    t.store.hang = (m) => m.kind === 'add-member';
    const kv = t.api.get('kvstores', NS, 'demo')!;
    t.api.put('kvstores', NS, { ...kv, spec: { ...(kv.spec as object), replicas: 5 } });
    const inFlight = await waitFor('the add recorded in status', () => t.status().membershipInFlight?.[0]);
    assert.deepEqual(inFlight, { kind: 'add-member', group: 1, replicaId: 104, address: 'demo-shard-1-3.demo-shard-1.kvs.svc.cluster.local:7000' });
    // The operator dies with the add sent but unconfirmed (its call never returns).
    void a.stop();
    await waitFor('op-a to let go', () => !a.isLeader);
    // The user changes their mind meanwhile; the new operator still completes the add first.
    const kv2 = t.api.get('kvstores', NS, 'demo')!;
    t.api.put('kvstores', NS, { ...kv2, spec: { ...(kv2.spec as object), replicas: 3 } });
    t.store.hang = undefined;
    const from = t.store.calls.length;
    const b = t.operator('op-b');
    await b.start();
    await t.ready('the store to be Ready again');
    assert.deepEqual(t.store.calls.slice(from), ['add-member 104', 'remove-member 104']);
    assert.deepEqual(t.status().membershipInFlight, []);
    assert.deepEqual(
      t.store.config!.groups[0]!.replicas.map((r) => r.id),
      [101, 102, 103],
    );
  } finally {
    await t.close();
  }
});

test('an operator upgrade whose group template differs restarts every pod once, each group\'s leader last; the same version restarted changes nothing', async () => {
  const spec = { shards: 1, replicas: 3, image: 'kvs:1' };
  const t = await setup(spec);
  try {
    const a = t.operator('op-a');
    await a.start();
    await t.ready('the store to be Ready');
    const writes = (): string[] => t.api.requests.filter((r) => r.method !== 'GET' && !r.path.includes('/kvstores/') && !r.path.includes('/leases') && !r.path.endsWith('/events')).map((r) => `${r.method} ${r.path}`);
    const restarts = (): string[] => (t.api.list('events', NS) as unknown as { reason: string; message: string }[]).filter((e) => e.reason === 'RestartPod').map((e) => e.message);
    const settings = settingsHash(t.api.get('configmaps', NS, 'demo-config')! as unknown as K8sObject);
    const revisionsNow = (): string[] => [...t.api.list('statefulsets', NS), ...t.api.list('pods', NS)].map((o) => (o.metadata.annotations as Record<string, string> | undefined)?.['kvs.sharded-kvs.dev/revision'] ?? '');
    const old = revisionsNow();
    assert.equal(new Set(old).size, 1);
    await a.stop();
    // The same operator version restarted: its template read again, the same revision; nothing written.
    const before = writes().length;
    const b = t.operator('op-b', t.store, loadGroupTemplate());
    await b.start();
    await waitFor('op-b to lead', () => b.isLeader, 20_000);
    const passes = b.metrics.reconciles;
    await waitFor('op-b\'s passes', () => b.metrics.reconciles > passes + 10);
    assert.deepEqual(writes().slice(before), [], 'nothing applied or restarted');
    assert.deepEqual(restarts(), []);
    assert.deepEqual(revisionsNow(), old);
    await b.stop();
    // A new operator version whose StatefulSet template adds an environment variable (the spec unchanged).
    const next = loadGroupTemplate();
    const sts = next.resources.find((o) => o.kind === 'StatefulSet') as K8sObject & { spec: { template: { spec: { containers: { env: { name: string; value?: string }[] }[] } } } };
    sts.spec.template.spec.containers[0]!.env.push({ name: 'KVS_NEW', value: '1' });
    const want = templateRevision(parseSpec(spec), settings, templateHash(next));
    assert.notEqual(want, old[0]);
    const c = t.operator('op-c', t.store, next);
    await c.start();
    await waitFor('every StatefulSet and pod on the new template, Ready', () => revisionsNow().every((r) => r === want) && t.status().phase === 'Ready' && restarts().length >= 6, 60_000);
    const applied = t.api.get('statefulsets', NS, 'demo-shard-1')!.spec as { template: { metadata: { annotations: Record<string, string> }; spec: { containers: { env: { name: string }[] }[] } } };
    assert.ok(applied.template.spec.containers[0]!.env.some((e) => e.name === 'KVS_NEW'), 'the new template applied');
    assert.equal(applied.template.metadata.annotations['kvs.sharded-kvs.dev/template-hash'], templateHash(next));
    // Every pod once, one at a time as an image change, each group's leader last.
    const done = restarts();
    assert.equal(done.length, 6, `every pod once: ${done.join('; ')}`);
    assert.equal(new Set(done.map((m) => m.split(' ')[0])).size, 6, done.join('; '));
    for (const g of ['demo-placement', 'demo-shard-1']) assert.match(done.filter((m) => m.startsWith(`${g}-`)).at(-1)!, /\(leader/, `${g}: leader last: ${done.join('; ')}`);
  } finally {
    await t.close();
  }
});

for (const [what, spec, reason] of [
  ['an even replica count', { shards: 1, replicas: 4, image: 'kvs:1' }, /spec\.replicas must be odd/],
  ['a zero storage size', { shards: 1, replicas: 1, image: 'kvs:1', storage: { size: '0Gi' } }, /spec\.storage\.size must be .*greater than zero/],
  // Before: the volume replaced the template's settings volume and the API server refused the StatefulSet (StepFailed).
  ['a pod volume named like the settings volume', { shards: 1, replicas: 1, image: 'kvs:1', podTemplate: { spec: { volumes: [{ name: 'config', emptyDir: {} }] } } }, /spec\.podTemplate\.spec\.volumes\[0\]: the volume name "config" is the operator's/],
  ['an image set on the server container', { shards: 1, replicas: 1, image: 'kvs:1', podTemplate: { spec: { containers: [{ name: 'kvs', image: 'other:1' }] } } }, /containers\[0\]\.image: the "kvs" container is the operator's/],
] as const) {
  test(`a spec the CRD would refuse (applied around it), ${what}: Degraded with the reason, a warning event, nothing applied`, async () => {
    const t = await setup(spec);
    try {
      await t.operator('op-a').start();
      await waitFor('Degraded', () => t.status().phase === 'Degraded');
      assert.match(t.status().lastError!, reason);
      const cond = (type: string) => t.status().conditions?.find((c) => c.type === type);
      assert.deepEqual([cond('Ready')?.status, cond('Ready')?.reason, cond('Degraded')?.status, cond('Degraded')?.reason], ['False', 'InvalidSpec', 'True', 'InvalidSpec']);
      // The event is written just after the status.
      await waitFor('a Warning InvalidSpec event', () => (t.api.list('events', NS) as unknown as { type: string; reason: string; message: string }[]).some((e) => e.type === 'Warning' && e.reason === 'InvalidSpec' && reason.test(e.message)));
      assert.equal(t.api.list('statefulsets', NS).length, 0);
    } finally {
      await t.close();
    }
  });
}

test('an immutable field changed (applied around the CRD): Degraded with the reason, nothing applied or restarted', async () => {
  const t = await setup({ shards: 1, replicas: 1, image: 'kvs:1' });
  try {
    await t.operator('op-a').start();
    await t.ready('the store to be Ready');
    const writes = (): string[] => t.api.requests.filter((r) => r.method !== 'GET' && !r.path.includes('/kvstores/') && !r.path.includes('/leases') && !r.path.endsWith('/events')).map((r) => `${r.method} ${r.path}`);
    for (const [field, value, want] of [
      ['placementReplicas', 5, /spec\.placementReplicas is immutable \(3 → 5\)/],
      ['partitions', 64, /spec\.partitions is immutable \(1024 → 64\)/],
    ] as const) {
      const before = writes().length;
      const kv = t.api.get('kvstores', NS, 'demo')!;
      const original = kv.spec as Record<string, unknown>;
      t.api.put('kvstores', NS, { ...kv, spec: { ...original, [field]: value } });
      // Before: placementReplicas 3 → 5 was half carried out (the placement StatefulSet re-applied
      // with KVS_GROUP_SIZE=5, status Ready); partitions 1024 → 64 was ignored with status Ready.
      await waitFor(`${field}: Degraded`, () => t.status().phase === 'Degraded' && want.test(t.status().lastError ?? ''));
      // Before: the conditions stayed as they were (Ready=True AllGroupsReady, Degraded=False).
      const cond = (type: string) => t.status().conditions!.find((c) => c.type === type)!;
      assert.deepEqual([cond('Ready').status, cond('Ready').reason], ['False', 'InvalidSpec'], JSON.stringify(t.status().conditions));
      assert.deepEqual([cond('Degraded').status, cond('Degraded').reason], ['True', 'InvalidSpec']);
      assert.match(cond('Degraded').message, want);
      assert.equal(cond('Progressing').status, 'False');
      // A few more passes: still nothing applied to the store's objects, no pod restarted.
      const passes = t.api.requests.length;
      await waitFor('more passes', () => t.api.requests.length > passes + 20);
      assert.deepEqual(writes().slice(before), [], `${field}: nothing written`);
      assert.equal((t.api.get('statefulsets', NS, 'demo-placement')!.metadata.annotations as Record<string, string>)['kvs.sharded-kvs.dev/join-from'], '3');
      // Put back: the store is Ready again.
      const kv2 = t.api.get('kvstores', NS, 'demo')!;
      t.api.put('kvstores', NS, { ...kv2, spec: original });
      await t.ready(`${field} back: Ready`);
    }
  } finally {
    await t.close();
  }
});

test('a refused spec is reported once, not once per pass: one InvalidSpec event and no status rewrite while it stays the same', async () => {
  const t = await setup({ shards: 1, replicas: 4, image: 'kvs:1' });
  try {
    const op = t.operator('op-a');
    await op.start();
    await waitFor('Degraded', () => t.status().phase === 'Degraded' && /spec\.replicas must be odd/.test(t.status().lastError ?? ''));
    const passes = op.metrics.reconciles;
    await waitFor('20 more passes', () => op.metrics.reconciles >= passes + 20);
    // Before: every pass (each resync, 5 s by default, and each watch event) created a new Warning
    // event and patched the status with the same content: an Event object per pass, forever.
    const invalid = (t.api.list('events', NS) as unknown as { reason: string }[]).filter((e) => e.reason === 'InvalidSpec');
    assert.equal(invalid.length, 1, `one InvalidSpec event, got ${invalid.length}`);
    const statusPatches = t.api.requests.filter((r) => r.method === 'PATCH' && r.path.endsWith('/kvstores/demo/status'));
    assert.equal(statusPatches.length, 1, `one status patch, got ${statusPatches.length}`);
    // Before: kvctl_kvstore_phase went on showing the phase of the last valid spec (or nothing).
    assert.match(op.metrics.render(), /kvctl_kvstore_phase\{kvstore="demo",phase="Degraded"\} 1/);
    // Another refused spec (a new generation) is reported again.
    const kv = t.api.get('kvstores', NS, 'demo')!;
    t.api.put('kvstores', NS, { ...kv, spec: { ...(kv.spec as object), replicas: 3, shards: 0 } });
    await waitFor('the new reason', () => /spec\.shards must be in 1\.\.30/.test(t.status().lastError ?? ''));
    await waitFor('a second InvalidSpec event', () => (t.api.list('events', NS) as unknown as { reason: string }[]).filter((e) => e.reason === 'InvalidSpec').length === 2);
  } finally {
    await t.close();
  }
});

test('a KVStore being deleted (foreground deletion: the garbage collector removes its objects first) is left alone: nothing re-created', async () => {
  const t = await setup({ shards: 1, replicas: 1, image: 'kvs:1' });
  try {
    const op = t.operator('op-a');
    await op.start();
    await t.ready('the store to be Ready');
    // kubectl delete --cascade=foreground: the resource stays, marked, until its dependents are gone.
    const kv = t.api.get('kvstores', NS, 'demo')!;
    t.api.put('kvstores', NS, { ...kv, metadata: { ...kv.metadata, deletionTimestamp: new Date().toISOString(), finalizers: ['foregroundDeletion'] } });
    const passes = op.metrics.reconciles;
    await waitFor('a pass that saw the deletion', () => op.metrics.reconciles >= passes + 2);
    const writesBefore = t.api.requests.length;
    for (const kind of ['statefulsets', 'services', 'poddisruptionbudgets', 'configmaps']) for (const o of t.api.list(kind, NS)) t.api.remove(kind, NS, o.metadata.name);
    const after = op.metrics.reconciles;
    await waitFor('10 more passes', () => op.metrics.reconciles >= after + 10);
    // Before: the operator saw the placement group gone and applied it again (and every other
    // group), fighting the garbage collector for as long as the deletion lasted.
    const writes = t.api.requests.slice(writesBefore).filter((r) => r.method !== 'GET' && !r.path.includes('/leases'));
    assert.deepEqual(writes.map((r) => `${r.method} ${r.path}`), []);
    assert.equal(t.api.list('statefulsets', NS).length, 0);
    // Once gone, its series leaves /metrics (before: kvctl_kvstore_phase kept reporting it).
    assert.match(op.metrics.render(), /kvstore="demo"/);
    t.api.remove('kvstores', NS, 'demo');
    await waitFor('the phase series of the deleted store gone', () => !/kvstore="demo"/.test(op.metrics.render()));
  } finally {
    await t.close();
  }
});

test('lastError is cleared from status once the store recovers (a merge patch must delete it)', async () => {
  const t = await setup({ shards: 1, replicas: 4, image: 'kvs:1' });
  try {
    await t.operator('op-a').start();
    await waitFor('Degraded', () => t.status().phase === 'Degraded' && /spec.replicas must be odd/.test(t.status().lastError ?? ''));
    const kv = t.api.get('kvstores', NS, 'demo')!;
    t.api.put('kvstores', NS, { ...kv, spec: { ...(kv.spec as object), replicas: 3 } });
    await t.ready('the store to be Ready');
    // Before: the status was written as a JSON merge patch without the lastError key, which keeps
    // the old value, so a Ready store went on showing the error it had recovered from.
    await waitFor('lastError gone', () => t.status().lastError === undefined);
  } finally {
    await t.close();
  }
});

test('pod template labels or annotations the operator owns: Degraded with the reason, nothing applied', async () => {
  for (const podTemplate of [
    { metadata: { labels: { 'app.kubernetes.io/managed-by': 'helm' } } },
    { metadata: { labels: { group: 'mine' } } },
    { metadata: { annotations: { 'kvs.sharded-kvs.dev/address': '10.0.0.1:7000' } } },
  ]) {
    const t = await setup({ shards: 1, replicas: 1, image: 'kvs:1', podTemplate });
    try {
      await t.operator('op-a').start();
      // Before: applied as given. managed-by replaced kvctl's label, so the operator's pod watch
      // never saw the pods and the store stayed Creating; group broke the StatefulSet's selector
      // (the API server refuses the StatefulSet); the address annotation gave every pod one address.
      await waitFor(`${JSON.stringify(podTemplate)}: Degraded`, () => t.status().phase === 'Degraded' && /spec\.podTemplate\.metadata\.(labels|annotations)\.\S+ is set by the operator/.test(t.status().lastError ?? ''));
      assert.equal(t.api.list('statefulsets', NS).length, 0);
    } finally {
      await t.close();
    }
  }
});

test('storage.retention changed on a running store: every StatefulSet gets the new claim retention, no pod restarted', async () => {
  const t = await setup({ shards: 1, replicas: 1, image: 'kvs:1', storage: { retention: 'Delete' } });
  try {
    await t.operator('op-a').start();
    await t.ready('the store to be Ready');
    const policy = (sts: string): unknown => (t.api.get('statefulsets', NS, sts)!.spec as { persistentVolumeClaimRetentionPolicy: { whenDeleted: string } }).persistentVolumeClaimRetentionPolicy.whenDeleted;
    assert.equal(policy('demo-placement'), 'Delete');
    const podDeletes = (): number => t.api.requests.filter((r) => r.method === 'DELETE' && r.path.includes('/pods/')).length;
    const before = podDeletes();
    const kv = t.api.get('kvstores', NS, 'demo')!;
    t.api.put('kvstores', NS, { ...kv, spec: { ...(kv.spec as object), storage: { retention: 'Retain' } } });
    // Before: nothing was re-applied (the revision left retention out), so the StatefulSets kept
    // whenDeleted: Delete and deleting the KVStore then deleted every volume claim.
    await waitFor('whenDeleted Retain on every StatefulSet', () => policy('demo-placement') === 'Retain' && policy('demo-shard-1') === 'Retain', 20_000);
    await t.ready('Ready after the retention change');
    assert.equal(podDeletes(), before, 'no pod restarted');
  } finally {
    await t.close();
  }
});

test('storage.size changed on a running store: existing groups keep their volumes, a new group gets the new size', async () => {
  const t = await setup({ shards: 1, replicas: 1, image: 'kvs:1' });
  try {
    await t.operator('op-a').start();
    await t.ready('the store to be Ready');
    const claimSize = (sts: string): unknown => ((t.api.get('statefulsets', NS, sts)!.spec as { volumeClaimTemplates: { spec: { resources: { requests: { storage: unknown } } } }[] }).volumeClaimTemplates[0]!.spec.resources.requests.storage);
    assert.equal(claimSize('demo-shard-1'), '10Gi');
    const podDeletes = (): number => t.api.requests.filter((r) => r.method === 'DELETE' && r.path.includes('/pods/')).length;
    const deletesBefore = podDeletes();
    const kv = t.api.get('kvstores', NS, 'demo')!;
    t.api.put('kvstores', NS, { ...kv, spec: { ...(kv.spec as object), storage: { size: '20Gi' } } });
    // Before: the operator re-applied every StatefulSet with the new claim template, which the API
    // server refuses (volumeClaimTemplates are immutable): every pass failed, the store was stuck.
    await t.ready('Ready after the size change');
    assert.equal(t.status().lastError, undefined);
    assert.equal(claimSize('demo-shard-1'), '10Gi');
    assert.equal(claimSize('demo-placement'), '10Gi');
    // Before: size and class were part of the revision, so every pod was restarted for nothing.
    const passes = t.api.requests.length;
    await waitFor('more passes', () => t.api.requests.length > passes + 20);
    assert.equal(podDeletes(), deletesBefore, 'no pod restarted for a claim template change that reaches new groups only');
    const kv2 = t.api.get('kvstores', NS, 'demo')!;
    t.api.put('kvstores', NS, { ...kv2, spec: { ...(kv2.spec as object), shards: 2 } });
    await waitFor('the new shard group', () => t.api.get('statefulsets', NS, 'demo-shard-2'));
    await t.ready('Ready with 2 shards');
    assert.equal(claimSize('demo-shard-2'), '20Gi');
    assert.equal(claimSize('demo-shard-1'), '10Gi');
  } finally {
    await t.close();
  }
});
