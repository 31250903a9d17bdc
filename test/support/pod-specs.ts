// Rendered manifests → the pods a Kubernetes control plane would create from them, filled in as the
// kubelet would (downward API, ConfigMap values, $(VAR) expansion in args). Pure: the manifest tests
// check these specs, and the podman harness (pods.ts) runs them as containers.
import { execFileSync } from 'node:child_process';
import { parseAllDocuments } from 'yaml';

/** A Kubernetes object as rendered YAML (fields reached through the helpers below). */
export type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }; spec?: any; data?: Record<string, string> } & Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** `kubectl kustomize DIR` parsed into objects. */
export function renderKustomize(dir: string): K8sObject[] {
  const text = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return parseAllDocuments(text).map((d) => {
    if (d.errors.length > 0) throw new Error(`kubectl kustomize ${dir}: ${d.errors[0]!.message}`);
    return d.toJS() as K8sObject;
  });
}

export interface ProbeSpec {
  path: string;
  port: number;
  periodSeconds: number;
  failureThreshold: number;
  timeoutSeconds: number;
}

export interface PodSpec {
  name: string;
  namespace: string;
  /** The StatefulSet (and headless Service) the pod belongs to. */
  set: string;
  ordinal: number;
  /** FQDN the headless Service gives it: <pod>.<service>.<namespace>.svc.<cluster domain>. */
  dnsName: string;
  /**
   * The search list the kubelet writes into a ClusterFirst pod's /etc/resolv.conf (with
   * `options ndots:5`): `<namespace>.svc.<domain> svc.<domain> <domain>` (pkg/kubelet/network/dns).
   */
  dnsSearch: string[];
  labels: Record<string, string>;
  image: string;
  /** Arguments after the image's entrypoint, with $(VAR) expanded. */
  args: string[];
  env: Record<string, string>;
  ports: Record<string, number>;
  /** mount path → file name → contents (ConfigMap volumes). */
  configFiles: Record<string, Record<string, string>>;
  /** Mount paths of the pod's persistent volume claims and emptyDirs. */
  dataMounts: string[];
  emptyDirs: string[];
  readOnlyRootFilesystem: boolean;
  runAsUser: number | undefined;
  runAsGroup: number | undefined;
  /** The pod's fsGroup: volumes are made group-owned and group-writable, the process gets the group. */
  fsGroup: number | undefined;
  capAdd: string[];
  capDrop: string[];
  startupProbe?: ProbeSpec;
  readinessProbe?: ProbeSpec;
  livenessProbe?: ProbeSpec;
  terminationGracePeriodSeconds: number;
}

export function byKind(objects: K8sObject[], kind: string): K8sObject[] {
  return objects.filter((o) => o.kind === kind);
}

/** Whether a label selector (matchLabels/matchExpressions, or a Service's plain map) selects `labels`. */
export function selects(selector: Record<string, unknown> | undefined, labels: Record<string, string>): boolean {
  if (!selector) return false;
  const isPlain = !('matchLabels' in selector) && !('matchExpressions' in selector);
  const matchLabels = (isPlain ? selector : (selector.matchLabels ?? {})) as Record<string, string>;
  for (const [k, v] of Object.entries(matchLabels)) if (labels[k] !== v) return false;
  for (const e of (isPlain ? [] : (selector.matchExpressions ?? [])) as { key: string; operator: string; values?: string[] }[]) {
    const v = labels[e.key];
    const ok = e.operator === 'In' ? v !== undefined && e.values!.includes(v) : e.operator === 'NotIn' ? v === undefined || !e.values!.includes(v) : e.operator === 'Exists' ? v !== undefined : v === undefined;
    if (!ok) return false;
  }
  return true;
}

/** Every pod of every StatefulSet in `objects`, on a cluster whose kubelets have `--cluster-domain=clusterDomain`. */
export function podsOf(objects: K8sObject[], clusterDomain = 'cluster.local'): PodSpec[] {
  const configMaps = new Map(byKind(objects, 'ConfigMap').map((c) => [c.metadata.name, c.data ?? {}]));
  return byKind(objects, 'StatefulSet').flatMap((sts) => Array.from({ length: (sts.spec.replicas as number | undefined) ?? 1 }, (_, i) => podOf(sts, i, configMaps, clusterDomain)));
}

/** The pod's /etc/resolv.conf as the kubelet writes it (the nameserver left out: the runtime's). */
export function resolvConfOf(pod: PodSpec): string {
  return `search ${pod.dnsSearch.join(' ')}\noptions ndots:5\n`;
}

function podOf(sts: K8sObject, ordinal: number, configMaps: Map<string, Record<string, string>>, clusterDomain: string): PodSpec {
  const namespace = sts.metadata.namespace ?? 'default';
  const name = `${sts.metadata.name}-${ordinal}`;
  const tpl = sts.spec.template;
  const podSpec = tpl.spec;
  if (podSpec.containers.length !== 1) throw new Error(`${sts.metadata.name}: the harness runs pods of one container`);
  const c = podSpec.containers[0];
  // The StatefulSet controller adds these two labels to each pod.
  const labels: Record<string, string> = { ...tpl.metadata.labels, 'statefulset.kubernetes.io/pod-name': name, 'apps.kubernetes.io/pod-index': String(ordinal) };
  const meta = { name, namespace, labels };
  const env: Record<string, string> = {};
  for (const e of (c.env ?? []) as { name: string; value?: string; valueFrom?: any }[]) { // eslint-disable-line @typescript-eslint/no-explicit-any
    env[e.name] = e.value !== undefined ? expand(e.value, env) : envFrom(e.valueFrom, meta, configMaps, `${name}: env ${e.name}`);
  }
  const ports: Record<string, number> = {};
  for (const p of (c.ports ?? []) as { name?: string; containerPort: number }[]) ports[p.name ?? String(p.containerPort)] = p.containerPort;
  const volumes = new Map(((podSpec.volumes ?? []) as { name: string; configMap?: { name: string }; emptyDir?: unknown }[]).map((v) => [v.name, v]));
  const claims = new Set(((sts.spec.volumeClaimTemplates ?? []) as K8sObject[]).map((t) => t.metadata.name));
  const configFiles: PodSpec['configFiles'] = {};
  const dataMounts: string[] = [];
  const emptyDirs: string[] = [];
  for (const m of (c.volumeMounts ?? []) as { name: string; mountPath: string }[]) {
    const v = volumes.get(m.name);
    if (claims.has(m.name)) dataMounts.push(m.mountPath);
    else if (v?.configMap) configFiles[m.mountPath] = lookupConfigMap(configMaps, v.configMap.name, `${name}: volume ${m.name}`);
    else if (v?.emptyDir) emptyDirs.push(m.mountPath);
    else throw new Error(`${name}: volume ${m.name} is neither a claim, a ConfigMap nor an emptyDir`);
  }
  const probe = (p: any): ProbeSpec | undefined => // eslint-disable-line @typescript-eslint/no-explicit-any
    p?.httpGet
      ? {
          path: p.httpGet.path,
          port: typeof p.httpGet.port === 'number' ? p.httpGet.port : ports[p.httpGet.port]!,
          periodSeconds: p.periodSeconds ?? 10,
          failureThreshold: p.failureThreshold ?? 3,
          timeoutSeconds: p.timeoutSeconds ?? 1,
        }
      : undefined;
  const sc = c.securityContext ?? {};
  const startupProbe = probe(c.startupProbe);
  const readinessProbe = probe(c.readinessProbe);
  const livenessProbe = probe(c.livenessProbe);
  return {
    name,
    namespace,
    set: sts.metadata.name,
    ordinal,
    dnsName: `${name}.${sts.spec.serviceName}.${namespace}.svc.${clusterDomain}`,
    dnsSearch: [`${namespace}.svc.${clusterDomain}`, `svc.${clusterDomain}`, clusterDomain],
    labels,
    image: c.image,
    args: ((c.args ?? []) as string[]).map((a) => expand(a, env)),
    env,
    ports,
    configFiles,
    dataMounts,
    emptyDirs,
    readOnlyRootFilesystem: sc.readOnlyRootFilesystem === true,
    runAsUser: sc.runAsUser ?? podSpec.securityContext?.runAsUser,
    runAsGroup: sc.runAsGroup ?? podSpec.securityContext?.runAsGroup,
    fsGroup: podSpec.securityContext?.fsGroup,
    capAdd: sc.capabilities?.add ?? [],
    capDrop: sc.capabilities?.drop ?? [],
    ...(startupProbe ? { startupProbe } : {}),
    ...(readinessProbe ? { readinessProbe } : {}),
    ...(livenessProbe ? { livenessProbe } : {}),
    terminationGracePeriodSeconds: podSpec.terminationGracePeriodSeconds ?? 30,
  };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function envFrom(from: any, meta: { name: string; namespace: string; labels: Record<string, string> }, configMaps: Map<string, Record<string, string>>, what: string): string {
  if (from?.fieldRef) {
    const path: string = from.fieldRef.fieldPath;
    if (path === 'metadata.name') return meta.name;
    if (path === 'metadata.namespace') return meta.namespace;
    const label = /^metadata\.labels\['(.+)'\]$/.exec(path);
    if (label) return meta.labels[label[1]!] ?? '';
    throw new Error(`${what}: fieldRef ${path} is not filled in by the harness`);
  }
  if (from?.configMapKeyRef) {
    const v = lookupConfigMap(configMaps, from.configMapKeyRef.name, what)[from.configMapKeyRef.key];
    if (v === undefined) throw new Error(`${what}: ConfigMap ${from.configMapKeyRef.name} has no key ${from.configMapKeyRef.key}`);
    return v;
  }
  throw new Error(`${what}: unsupported valueFrom ${JSON.stringify(from)}`);
}

function lookupConfigMap(configMaps: Map<string, Record<string, string>>, name: string, what: string): Record<string, string> {
  const cm = configMaps.get(name);
  if (!cm) throw new Error(`${what}: ConfigMap ${name} is not in the rendered objects`);
  return cm;
}

/** The kubelet's $(VAR) expansion: defined variables are replaced, others left as written, $$ escapes. */
export function expand(s: string, env: Record<string, string>): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name: string | undefined) => (m === '$$' ? '$' : name !== undefined && name in env ? env[name]! : m));
}
