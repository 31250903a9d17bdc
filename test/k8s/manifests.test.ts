// The Kustomize base and every overlay, rendered with `kubectl kustomize` as a user would: every
// object valid against the Kubernetes API schemas (kubernetes-models) or our CRD schemas, and the
// policies the store relies on (docs/kubernetes.md) hold on the rendered output.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Ajv } from 'ajv';
import { parse as parseYaml, stringify } from 'yaml';
import { splitAddress } from '../../src/address/address.ts';
import { loadConfig, type ServerConfig } from '../../src/server/config.ts';
import { byKind, podsOf, renderKustomize, resolvConfOf, selects, type K8sObject, type PodSpec } from '../support/pod-specs.ts';
import { CRD_SCHEMAS } from './crd-schemas.ts';
import { assertPreStop } from './prestop.ts';
import { loadGroupTemplate } from '../../src/operator/group-template.ts';
import { groupObjects } from '../../src/operator/objects.ts';
import { parseSpec } from '../../src/operator/spec.ts';
import { startBoundMs } from '../../src/cluster/start-bound.ts';

const ROOT = new URL('../../kustomize/', import.meta.url).pathname;
/** The kustomizations that render a store (one of them runs in a namespace at a time). */
const STORES = ['base', 'overlays/dev', 'overlays/prod', 'overlays/tracing'];
/** Add-ons applied on top of whichever store runs in namespace kvs: they render no store object. */
const ADDONS = ['overlays/chaos', 'overlays/monitoring'];
const TARGETS = [...STORES, ...ADDONS];
/** The stores that run in namespace kvs, which the add-ons aim at. */
const KVS_STORES = STORES.filter((t) => t !== 'overlays/tracing');
const rendered = new Map(TARGETS.map((t) => [t, renderKustomize(join(ROOT, t))]));
const objectsOf = (t: string): K8sObject[] => rendered.get(t)!;
/** The tracing overlay's privileged pods run in a namespace of their own; everything else in kvs. */
const namespaceOf = (t: string): string => (t === 'overlays/tracing' ? 'kvs-tracing' : 'kvs');
const ajv = new Ajv({ allErrors: true, strict: true });
const crdValidators = new Map(Object.entries(CRD_SCHEMAS).map(([k, s]) => [k, ajv.compile(s)]));

/** kubernetes-models validates one kind per module: apps/v1 StatefulSet → kubernetes-models/apps/v1/StatefulSet. */
async function validateBuiltin(o: K8sObject): Promise<void> {
  const mod = (await import(`kubernetes-models/${o.apiVersion}/${o.kind}`)) as Record<string, new (d: unknown) => { validate(): void }>;
  const Model = mod[o.kind];
  assert.ok(Model, `no model for ${o.apiVersion} ${o.kind}`);
  new Model(o).validate();
}

/** `--name=value` and `--flag` arguments as a map (after the subcommand). */
function flagsOf(args: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of args.slice(1)) {
    const m = /^--([^=]+)(?:=(.*))?$/.exec(a);
    assert.ok(m, `argument "${a}" is not --name[=value]`);
    out[m[1]!] = m[2] ?? 'true';
  }
  return out;
}

const scratch = mkdtempSync(join(tmpdir(), 'kvs-manifests-'));

/** The capabilities Pod Security's "baseline" level lets a container add (Pod Security Standards). */
const BASELINE_CAPABILITIES = ['AUDIT_WRITE', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'MKNOD', 'NET_BIND_SERVICE', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT'];

/** What a namespace's Pod Security `enforce` level would refuse in a pod (baseline's rules; privileged refuses nothing). */
function podSecurityViolations(level: string | undefined, pod: K8sObject['spec']): string[] {
  if (level === 'privileged') return [];
  assert.equal(level, 'baseline', 'the manifests enforce baseline or privileged');
  const out: string[] = [];
  if (pod.hostNetwork || pod.hostPID || pod.hostIPC) out.push('host namespaces');
  for (const v of pod.volumes ?? []) if (v.hostPath) out.push(`hostPath volume ${v.name}`);
  for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
    const sc = c.securityContext ?? {};
    if (sc.privileged) out.push(`${c.name}: privileged`);
    for (const cap of sc.capabilities?.add ?? []) if (!BASELINE_CAPABILITIES.includes(cap)) out.push(`${c.name}: adds ${cap}`);
    for (const p of c.ports ?? []) if (p.hostPort) out.push(`${c.name}: hostPort ${p.hostPort}`);
  }
  return out;
}

/**
 * The server configuration a pod gets, computed by the server's own loadConfig from the pod's args,
 * environment and ConfigMap file (written to a scratch path; the data directory too).
 */
function serverConfigOf(pod: PodSpec): ServerConfig {
  assert.deepEqual(pod.args.slice(0, 1), ['server']);
  const path = pod.env.KVS_CONFIG!;
  const dir = path.slice(0, path.lastIndexOf('/'));
  const file = join(scratch, `${pod.name}.yaml`);
  writeFileSync(file, pod.configFiles[dir]![path.slice(dir.length + 1)]!);
  assert.equal(parseYaml(readFileSync(file, 'utf8')).data, pod.dataMounts[0], 'the data directory is the volume');
  return loadConfig({ ...flagsOf(pod.args), config: file, data: join(scratch, 'data') }, pod.env, () => resolvConfOf(pod));
}

for (const target of STORES) {
  describe(`kustomize/${target}`, () => {
    const objects = objectsOf(target);
    const pods = podsOf(objects);

    test(`every object is valid against its API schema and lives in namespace ${namespaceOf(target)}`, async () => {
      assert.ok(objects.length > 0);
      for (const o of objects) {
        const key = `${o.apiVersion}/${o.kind}`;
        const crd = crdValidators.get(key);
        if (crd) assert.ok(crd(o), `${key} ${o.metadata.name}: ${ajv.errorsText(crd.errors)}`);
        else await validateBuiltin(o);
        if (o.kind !== 'Namespace') assert.equal(o.metadata.namespace, namespaceOf(target), `${o.kind} ${o.metadata.name}`);
      }
    });

    test('one StatefulSet per group: placement and shard-0..2, 3 replicas each, Parallel, a PDB allowing one down', () => {
      const sets = byKind(objects, 'StatefulSet');
      assert.deepEqual(sets.map((s) => s.metadata.name).sort(), ['placement', 'shard-0', 'shard-1', 'shard-2']);
      for (const s of sets) {
        assert.equal(s.spec.replicas, 3);
        assert.equal(s.spec.podManagementPolicy, 'Parallel');
        // The ordered one-at-a-time roll, with nothing that only a feature gate honours: before,
        // rollingUpdate.maxUnavailable: 1 (MaxUnavailableStatefulSet: alpha from 1.24, off by
        // default before 1.35) read as a guarantee the controller did not give (docs/kubernetes.md).
        assert.deepEqual(s.spec.updateStrategy, { type: 'RollingUpdate' }, `${s.metadata.name}: updateStrategy`);
        assert.equal(s.spec.template.metadata.labels.group, s.metadata.name);
        assert.equal(s.spec.volumeClaimTemplates.length, 1, 'a PVC per replica');
        const groupPods = pods.filter((p) => p.set === s.metadata.name);
        const pdbs = byKind(objects, 'PodDisruptionBudget').filter((b) => groupPods.some((p) => selects(b.spec.selector, p.labels)));
        assert.equal(pdbs.length, 1, `${s.metadata.name}: exactly one PDB`);
        assert.equal(pdbs[0]!.spec.maxUnavailable, 1);
        assert.deepEqual(pods.filter((p) => selects(pdbs[0]!.spec.selector, p.labels)).map((p) => p.name), groupPods.map((p) => p.name), 'the PDB selects exactly its group');
        const cfg = serverConfigOf(groupPods[0]!);
        assert.equal(cfg.groupSize, s.spec.replicas, 'group-size in the config is the StatefulSet size');
      }
    });

    test('every container has startup, readiness and liveness probes, resources and a restrictive securityContext', () => {
      for (const s of byKind(objects, 'StatefulSet')) {
        const tpl = s.spec.template.spec;
        for (const c of tpl.containers) {
          const what = `${s.metadata.name}/${c.name}`;
          assert.equal(c.startupProbe?.httpGet?.path, '/healthz', what);
          assert.equal(c.livenessProbe?.httpGet?.path, '/healthz', what);
          assert.equal(c.readinessProbe?.httpGet?.path, '/readyz', what);
          assert.ok(c.resources?.requests?.cpu && c.resources?.requests?.memory && c.resources?.limits?.memory, `${what}: resources`);
          const sc = c.securityContext;
          assert.equal(sc.allowPrivilegeEscalation, false, what);
          assert.equal(sc.readOnlyRootFilesystem, true, what);
          assert.notEqual(sc.privileged, true, what);
          assert.deepEqual(sc.capabilities.drop, ['ALL'], what);
          const added: string[] = sc.capabilities.add ?? [];
          if (target === 'overlays/tracing') assert.deepEqual([...added].sort(), ['BPF', 'NET_ADMIN', 'PERFMON'], what);
          else {
            assert.deepEqual(added, [], what);
            assert.equal(sc.runAsNonRoot, true, what);
            assert.equal(tpl.securityContext.runAsNonRoot, true, what);
          }
        }
        // Enough time for a leader to hand over (an election timeout) and exit.
        assert.ok(tpl.terminationGracePeriodSeconds >= 10);
      }
    });

    test('the startup probe waits as long as a replica with a full volume may take to open its doors', () => {
      // A replica answers /healthz only once it has run its start: the rejoin check of an empty
      // volume, a shard replica's wait for the configuration, and the walk of its whole LMDB file
      // (startBoundMs). Before,
      // prod gave its 50Gi volumes the base's 300 s: a replica holding more than ~2 GB was killed
      // before its walk ended, and again at every restart.
      for (const s of byKind(objects, 'StatefulSet')) {
        const probe = s.spec.template.spec.containers.find((c: { name: string }) => c.name === 'kvs').startupProbe;
        const windowMs = 1000 * ((probe.initialDelaySeconds ?? 0) + (probe.periodSeconds ?? 10) * (probe.failureThreshold ?? 3));
        const size = String(s.spec.volumeClaimTemplates[0].spec.resources.requests.storage);
        const m = /^(\d+)(Mi|Gi|Ti)$/.exec(size);
        assert.ok(m, `${s.metadata.name}: volume size ${size}`);
        const bytes = Number(m[1]) * 1024 ** { Mi: 2, Gi: 3, Ti: 4 }[m[2] as 'Mi' | 'Gi' | 'Ti'];
        const startMs = startBoundMs(bytes);
        assert.ok(windowMs >= startMs, `${s.metadata.name}: the startup probe gives up after ${windowMs / 1000} s; a replica with ${size} of data may take ${Math.ceil(startMs / 1000)} s to start`);
      }
    });

    test('a deleted replica keeps serving a few seconds (preStop) before SIGTERM, within its grace period', () => {
      for (const s of byKind(objects, 'StatefulSet')) {
        const tpl = s.spec.template.spec;
        assertPreStop(s.metadata.name, tpl.containers.find((c: { name: string }) => c.name === 'kvs'), tpl.terminationGracePeriodSeconds);
      }
    });

    test("the namespace's Pod Security level admits every replica's pod (pods a level refuses are never created)", () => {
      const ns = byKind(objects, 'Namespace').find((n) => n.metadata.name === namespaceOf(target));
      assert.ok(ns, 'the namespace is part of the rendering');
      const level = ns.metadata.labels?.['pod-security.kubernetes.io/enforce'];
      for (const s of byKind(objects, 'StatefulSet')) {
        assert.deepEqual(podSecurityViolations(level, s.spec.template.spec), [], `${s.metadata.name} under enforce=${level}`);
      }
    });

    test('each headless Service selects exactly its group, publishes not-ready addresses; the client Service selects every replica', () => {
      const services = byKind(objects, 'Service');
      for (const s of byKind(objects, 'StatefulSet')) {
        const svc = services.find((x) => x.metadata.name === s.spec.serviceName);
        assert.ok(svc, `${s.metadata.name}: its serviceName names a Service`);
        assert.equal(svc.spec.clusterIP, 'None');
        assert.equal(svc.spec.publishNotReadyAddresses, true);
        assert.deepEqual(pods.filter((p) => selects(svc.spec.selector, p.labels)).map((p) => p.name), pods.filter((p) => p.set === s.metadata.name).map((p) => p.name));
      }
      const client = services.find((x) => x.metadata.name === 'kvs')!;
      assert.equal(pods.filter((p) => selects(client.spec.selector, p.labels)).length, pods.length);
      // ... and none of an operator-managed store in the same namespace, even one named like this
      // deployment's instance (kvs) and with pod template labels of its own. Before: the selector was
      // app.kubernetes.io/name: kvs alone, which the operator's pods carry too.
      const template = loadGroupTemplate();
      for (const store of ['kvs', 'demo']) {
        const spec = parseSpec({ shards: 1, image: 'kvs:1', podTemplate: { metadata: { labels: { team: 'a' } } } }, store);
        for (const group of [0, 1]) {
          const sts = groupObjects(template, { name: store, namespace: 'kvs', uid: 'u' }, spec, { group, replicas: 3, revision: 'r', joinFrom: 0 }).find((o) => o.kind === 'StatefulSet')!;
          const labels = (sts.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels;
          assert.ok(!selects(client.spec.selector, labels), `the client Service selects the pods of operator-managed ${sts.metadata.name}: ${JSON.stringify(labels)}`);
        }
      }
      const ingresses = byKind(objects, 'Ingress');
      assert.deepEqual(ingresses.map((i) => i.metadata.annotations!['nginx.ingress.kubernetes.io/backend-protocol']).sort(), ['GRPC', 'HTTP']);
      for (const i of ingresses) assert.equal(i.spec.rules[0].http.paths[0].backend.service.name, 'kvs');
      // ingress-nginx carries HTTP/2 (gRPC) only over TLS: the gRPC host must have a TLS section.
      const grpcIngress = ingresses.find((i) => i.metadata.annotations!['nginx.ingress.kubernetes.io/backend-protocol'] === 'GRPC')!;
      assert.ok(grpcIngress.spec.tls?.some((t: { hosts: string[] }) => t.hosts.includes(grpcIngress.spec.rules[0].host)), 'the gRPC Ingress terminates TLS for its host');
    });

    // Before: KVS_DNS_SUFFIX was $(POD_NAMESPACE).svc.cluster.local, so on a cluster whose kubelets
    // run with another --cluster-domain every peer name was one no DNS server answers.
    for (const domain of ['cluster.local', 'k8s.corp.example']) test(`the peers each pod is given are the DNS names its headless Service creates (cluster domain ${domain})`, () => {
      const pods = podsOf(objects, domain);
      const headless = (name: string): K8sObject | undefined => byKind(objects, 'Service').find((x) => x.metadata.name === name && x.spec.clusterIP === 'None');
      const dnsOwner = new Map(pods.map((p) => [p.dnsName, p]));
      const checkAddress = (addr: string, set: string): void => {
        const host = addr.slice(0, addr.lastIndexOf(':'));
        const pod = dnsOwner.get(host);
        assert.ok(pod, `${addr}: no pod has this DNS name`);
        assert.equal(pod.set, set);
        const svc = headless(host.split('.')[1]!);
        assert.ok(svc && selects(svc.spec.selector, pod.labels), `${host}: its Service selects it`);
        assert.equal(Number(addr.slice(addr.lastIndexOf(':') + 1)), pod.ports.native);
      };
      for (const pod of pods) {
        const cfg = serverConfigOf(pod);
        const peers = cfg.replicas.map((r) => r.address);
        assert.equal(peers.length, 3);
        assert.equal(cfg.replicas.find((r) => r.id === cfg.id)?.address, `${pod.dnsName}:${pod.ports.native}`, `${pod.name} is itself among its peers`);
        for (const a of peers) checkAddress(a, pod.set);
        assert.ok(cfg.resp && cfg.grpc && cfg.http, `${pod.name}: every door on`);
        for (const door of ['resp', 'grpc', 'http'] as const) assert.equal(splitAddress(cfg[door]!)[1], pod.ports[door], `${pod.name}: the ${door} port is the container port`);
        // The pod IP may be IPv4 or IPv6 (kubelet probes, Services, peers): dual-stack wildcard sockets take both.
        for (const door of ['listen', 'resp', 'grpc', 'http'] as const) assert.equal(splitAddress(cfg[door]!)[0], '::', `${pod.name}: ${door} ${cfg[door]} is not the dual-stack [::]`);
        if (pod.set === 'placement') {
          assert.deepEqual(cfg.placement, []);
          assert.deepEqual(cfg.initialGroups?.map((g) => g.id), [1, 2, 3]);
          for (const g of cfg.initialGroups!) for (const r of g.replicas) checkAddress(r.address, `shard-${g.id - 1}`);
        } else {
          assert.equal(cfg.initialGroups, undefined, `${pod.name}: only placement replicas bootstrap`);
          assert.equal(cfg.placement.length, 3);
          for (const a of cfg.placement) checkAddress(a, 'placement');
        }
      }
    });

    test('stern -l group=shard-1 selects exactly shard-1\'s pods; every pod carries the app.kubernetes.io labels', () => {
      for (const g of ['placement', 'shard-0', 'shard-1', 'shard-2']) {
        assert.deepEqual(pods.filter((p) => selects({ group: g }, p.labels)).map((p) => p.name), [0, 1, 2].map((m) => `${g}-${m}`));
      }
      for (const p of pods) {
        for (const k of ['app.kubernetes.io/name', 'app.kubernetes.io/instance', 'app.kubernetes.io/part-of', 'app.kubernetes.io/component']) assert.ok(p.labels[k], `${p.name}: ${k}`);
      }
    });
  });
}

test('the add-ons (chaos, monitoring): every object valid against its CRD schema, in namespace kvs', () => {
  for (const target of ADDONS) {
    const objects = objectsOf(target);
    assert.ok(objects.length > 0, target);
    for (const o of objects) {
      const key = `${o.apiVersion}/${o.kind}`;
      const crd = crdValidators.get(key);
      assert.ok(crd, `${target}: ${key} ${o.metadata.name} is not an add-on kind`);
      assert.ok(crd(o), `${target}: ${key} ${o.metadata.name}: ${ajv.errorsText(crd.errors)}`);
      assert.equal(o.metadata.namespace, 'kvs', `${target}: ${o.kind} ${o.metadata.name}`);
    }
  }
});

test('chaos and monitoring render none of a store\'s objects: applied over dev (kind) or prod they change nothing of it', () => {
  // Before: both rendered the base. Applied over dev, kubectl apply tried to turn dev's StatefulSets
  // into the base's: the API server refuses the claim template change (256Mi → 1Gi; prod: 50Gi of
  // class ssd → 1Gi) for each of them, and where it took the template, the base's required
  // anti-affinity and 3 CPUs of requests left a one-node kind cluster's groups without a quorum.
  for (const addon of ADDONS) {
    for (const store of STORES) {
      const mine = new Set(objectsOf(store).map((o) => `${o.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}`));
      const clash = objectsOf(addon).map((o) => `${o.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}`).filter((k) => mine.has(k));
      assert.deepEqual(clash, [], `${addon} re-renders objects of ${store}`);
    }
  }
});

test('re-applying one kustomization never changes what another applied: a namespace (its Pod Security level) is rendered the same by every one', () => {
  // Before: kustomize/operator and the base rendered namespace kvs at enforce=baseline, the tracing
  // overlay the same namespace at privileged; re-applying the operator set it back to baseline and
  // the next traced pod (a restart, a rolling upgrade) was refused.
  const operator = renderKustomize(join(ROOT, 'operator'));
  // The operator for traced KVStores runs in the tracing overlay's namespace, rendered the same.
  const operatorTracing = renderKustomize(join(ROOT, 'overlays/operator-tracing'));
  assert.deepEqual([...new Set(operatorTracing.filter((o) => o.kind !== 'Namespace' && o.metadata.namespace).map((o) => o.metadata.namespace))], ['kvs-tracing']);
  const all: [string, K8sObject[]][] = [['operator', operator], ['overlays/operator-tracing', operatorTracing], ...TARGETS.map((t): [string, K8sObject[]] => [t, objectsOf(t)])];
  const seen = new Map<string, [string, K8sObject]>();
  for (const [where, objects] of all) {
    for (const ns of byKind(objects, 'Namespace')) {
      const first = seen.get(ns.metadata.name);
      if (first) assert.deepEqual(ns, first[1], `namespace ${ns.metadata.name}: ${where} renders it otherwise than ${first[0]}`);
      else seen.set(ns.metadata.name, [where, ns]);
    }
  }
  assert.deepEqual([...seen.keys()].sort(), ['kvs', 'kvs-tracing']);
  assert.equal(seen.get('kvs')![1].metadata.labels!['pod-security.kubernetes.io/enforce'], 'baseline');
  assert.equal(seen.get('kvs-tracing')![1].metadata.labels!['pod-security.kubernetes.io/enforce'], 'privileged');
  // The operator's objects other than the namespace are its own: no store kustomization renders them.
  for (const o of operator.filter((x) => x.kind !== 'Namespace')) {
    for (const t of TARGETS) assert.ok(!objectsOf(t).some((x) => x.kind === o.kind && x.metadata.name === o.metadata.name && x.metadata.namespace === o.metadata.namespace), `${o.kind} ${o.metadata.name} in ${t}`);
  }
});

test('two stores run side by side (kvs and kvs-tracing): no Ingress host is claimed in both namespaces', () => {
  // Before: the tracing overlay, moved to kvs-tracing as a second store, kept the base's hosts:
  // ingress-nginx refuses an Ingress whose host and path another namespace's Ingress has ("is
  // already defined in ingress kvs/kvs-http"), or without its webhook routes to the oldest only.
  const owners = new Map<string, string>();
  for (const t of TARGETS) {
    for (const i of byKind(objectsOf(t), 'Ingress')) {
      const hosts = [...i.spec.rules.map((r: { host: string }) => r.host), ...(i.spec.tls ?? []).flatMap((x: { hosts: string[] }) => x.hosts)];
      for (const h of hosts) {
        const ns = i.metadata.namespace!;
        const first = owners.get(h);
        assert.ok(first === undefined || first === ns, `${t}: Ingress ${ns}/${i.metadata.name} claims host ${h}, already an Ingress host in namespace ${first}`);
        owners.set(h, ns);
      }
    }
  }
});

test('dev drops anti-affinity; base and prod keep one replica of a group per node; prod spreads each group over zones', () => {
  for (const s of byKind(objectsOf('overlays/dev'), 'StatefulSet')) assert.equal(s.spec.template.spec.affinity, undefined);
  for (const t of ['base', 'overlays/prod']) {
    for (const s of byKind(objectsOf(t), 'StatefulSet')) {
      const term = s.spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0];
      assert.equal(term.topologyKey, 'kubernetes.io/hostname');
      assert.equal(term.labelSelector.matchLabels.group, s.metadata.name);
    }
  }
  for (const s of byKind(objectsOf('overlays/prod'), 'StatefulSet')) {
    const spread = s.spec.template.spec.topologySpreadConstraints[0];
    assert.equal(spread.topologyKey, 'topology.kubernetes.io/zone');
    assert.deepEqual(spread.matchLabelKeys, ['group']);
  }
});

test('tracing turns the tracer on in every replica', () => {
  for (const p of podsOf(objectsOf('overlays/tracing'))) assert.deepEqual(serverConfigOf(p).trace, { format: 'text' }, p.name);
  for (const p of podsOf(objectsOf('base'))) assert.equal(serverConfigOf(p).trace, undefined, p.name);
});

test('chaos experiments are scoped to namespace kvs, bounded in time, and aim at replicas that exist', () => {
  const experiments = objectsOf('overlays/chaos').filter((o) => o.apiVersion.startsWith('chaos-mesh.org/'));
  assert.deepEqual(experiments.map((e) => e.kind).sort(), ['IOChaos', 'NetworkChaos', 'NetworkChaos', 'PodChaos', 'StressChaos']);
  // Whichever store runs in kvs (base, dev, prod): the experiments go on top of it.
  for (const store of KVS_STORES) {
    const pods = podsOf(objectsOf(store));
    for (const e of experiments) {
      assert.ok(e.spec.duration, `${e.metadata.name}: a duration`);
      for (const sel of [e.spec.selector, e.spec.target?.selector].filter(Boolean)) {
        assert.deepEqual(sel.namespaces, ['kvs']);
        assert.ok(pods.some((p) => selects(sel.labelSelectors, p.labels)), `${e.metadata.name}: selects some pod of ${store}`);
      }
    }
    const io = experiments.find((e) => e.kind === 'IOChaos')!;
    assert.ok(pods[0]!.dataMounts.includes(io.spec.volumePath), `IOChaos acts on the data volume of ${store}`);
  }
  const partition = experiments.find((e) => e.spec.action === 'partition')!;
  assert.equal(partition.spec.mode, 'one', 'one replica cut off');
  assert.deepEqual(partition.spec.selector.labelSelectors, partition.spec.target.selector.labelSelectors, 'from its own group');
});

test('monitoring: the ServiceMonitor scrapes each replica once; promtool accepts the alert rules', () => {
  const objects = objectsOf('overlays/monitoring');
  const sm = byKind(objects, 'ServiceMonitor')[0]!;
  // Whichever store runs in kvs (base, dev, prod): the ServiceMonitor goes on top of it.
  const scraped: K8sObject[] = [];
  for (const store of KVS_STORES) {
    const pods = podsOf(objectsOf(store));
    const services = byKind(objectsOf(store), 'Service').filter((s) => sm.spec.namespaceSelector.matchNames.includes(s.metadata.namespace) && selects(sm.spec.selector, s.metadata.labels ?? {}));
    const podsScraped = services.flatMap((s) => pods.filter((p) => selects(s.spec.selector, p.labels)).map((p) => p.name)).sort();
    assert.deepEqual(podsScraped, pods.map((p) => p.name).sort(), `${store}: every replica scraped once`);
    assert.ok(services.every((s) => s.spec.ports.some((p: { name: string }) => p.name === sm.spec.endpoints[0].port)));
    scraped.push(...services);
  }
  const rules = byKind(objects, 'PrometheusRule')[0]!;
  assert.deepEqual(rules.spec.groups[0].rules.map((r: { alert: string }) => r.alert).sort(), ['KvsGroupWithoutLeader', 'KvsHandoffStuck', 'KvsReplicaDown', 'KvsReplicaLagging']);
  // prometheus-operator names a target's job after the Service label `jobLabel` names, else after
  // the Service: the alert on unscrapeable replicas must match every scraped replica's job.
  const jobs = scraped.map((svc) => (sm.spec.jobLabel ? svc.metadata.labels?.[sm.spec.jobLabel] : undefined) ?? svc.metadata.name);
  const down = rules.spec.groups[0].rules.find((r: { alert: string }) => r.alert === 'KvsReplicaDown');
  const matcher = /up\{job(=~?)"([^"]*)"\}/.exec(down.expr);
  assert.ok(matcher, `KvsReplicaDown selects up{job=...}: ${down.expr}`);
  const matches = (job: string): boolean => (matcher[1] === '=' ? job === matcher[2] : new RegExp(`^(?:${matcher[2]})$`).test(job));
  for (const job of jobs) assert.ok(matches(job), `KvsReplicaDown (${down.expr}) misses job "${job}"`);
  const file = join(mkdtempSync(join(tmpdir(), 'kvs-rules-')), 'rules.yaml');
  writeFileSync(file, stringify(rules.spec));
  const r = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
  if (r.error && process.env.KVS_K8S_REQUIRE !== '1') return; // promtool not installed (CI installs it)
  assert.equal(r.status, 0, `promtool: ${r.stdout}${r.stderr}`);
});

test('an edit of the server settings rolls every StatefulSet of the base and of every overlay (the ConfigMap name carries a hash)', () => {
  // A copy of kustomize/ with one setting changed where the base keeps it, rendered again.
  const copy = mkdtempSync(join(tmpdir(), 'kvs-kz-settings-'));
  cpSync(ROOT, copy, { recursive: true });
  const files = readdirSync(join(copy, 'base')).filter((f) => /\.ya?ml$/.test(f) && readFileSync(join(copy, 'base', f), 'utf8').includes('request-timeout-ms: 5000'));
  assert.equal(files.length, 1, `one file of kustomize/base holds the settings: ${files.join(', ')}`);
  const file = join(copy, 'base', files[0]!);
  writeFileSync(file, readFileSync(file, 'utf8').replace('request-timeout-ms: 5000', 'request-timeout-ms: 7000'));
  const configMapOf = (objects: K8sObject[], sts: K8sObject): K8sObject => {
    const name = (sts.spec.template.spec.volumes as { name: string; configMap?: { name: string } }[]).find((v) => v.name === 'config')!.configMap!.name;
    const cm = byKind(objects, 'ConfigMap').find((c) => c.metadata.name === name);
    assert.ok(cm, `${sts.metadata.name}: ConfigMap ${name} is rendered`);
    return cm;
  };
  for (const target of STORES) {
    const before = objectsOf(target);
    const after = renderKustomize(join(copy, target));
    for (const sts of byKind(before, 'StatefulSet')) {
      const what = `${target}: ${sts.metadata.name}`;
      const edited = byKind(after, 'StatefulSet').find((s) => s.metadata.name === sts.metadata.name)!;
      assert.match(configMapOf(after, edited).data?.['kvs.yaml'] ?? '', /^request-timeout-ms: 7000$/m, what);
      // A changed pod template is what makes the StatefulSet controller replace the pods.
      assert.notDeepEqual(edited.spec.template, sts.spec.template, `${what}: the pod template changes with the settings`);
      assert.match(configMapOf(before, sts).metadata.name, /^kvs-config-[a-z0-9]{10}$/, `${what}: a generated name (kvs-config-<hash>)`);
    }
  }
});

test('kubectl kustomize fails loudly on a broken overlay (the render is really checked)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvs-kz-'));
  writeFileSync(join(dir, 'kustomization.yaml'), `resources: [${join(ROOT, 'base')}]\npatches:\n  - target: {kind: StatefulSet}\n    patch: "- {op: remove, path: /spec/nothing}"\n`);
  assert.throws(() => execFileSync('kubectl', ['kustomize', dir], { stdio: 'pipe' }));
});

test('the schemas catch a misspelt or mistyped field (a validation that can fail)', async () => {
  const chaos = objectsOf('overlays/chaos').find((o) => o.kind === 'PodChaos')!;
  const podChaos = crdValidators.get(`${chaos.apiVersion}/PodChaos`)!;
  assert.equal(podChaos({ ...chaos, spec: { ...chaos.spec, gracePeriods: 0 } }), false);
  assert.equal(podChaos({ ...chaos, spec: { ...chaos.spec, duration: 'thirty seconds' } }), false);
  const sts = byKind(objectsOf('base'), 'StatefulSet')[0]!;
  await assert.rejects(validateBuiltin({ ...sts, spec: { ...sts.spec, podManagementPolicy: 'Ordered' } }));
});

test('the operator, its example KVStore and the base run the one image make image builds', () => {
  const imagesOf = (objects: K8sObject[]): string[] => objects.flatMap((o) => (o.kind === 'Deployment' || o.kind === 'StatefulSet' ? (o.spec.template.spec.containers as { image: string }[]).map((c) => c.image) : []));
  const base = new Set(imagesOf(objectsOf('base')));
  assert.equal(base.size, 1, `one image in the base: ${[...base].join(', ')}`);
  const image = [...base][0]!;
  const makefile = readFileSync(new URL('../../Makefile', import.meta.url), 'utf8');
  const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  assert.ok(makefile.includes('localhost/sharded-kvs'), 'make image tags localhost/sharded-kvs');
  assert.equal(image, `localhost/sharded-kvs:${version}`);
  assert.deepEqual(new Set(imagesOf(renderKustomize(join(ROOT, 'operator')))), base, 'the operator Deployment');
  const example = parseYaml(readFileSync(join(ROOT, 'examples/kvstore.yaml'), 'utf8')) as { spec: { image: string } };
  assert.equal(example.spec.image, image, 'the example KVStore');
});
