// `kvs operator` runs the kvctl operator (docs/operator.md); `kvs kvstore status` prints the
// progress of KVStore resources.
import { hostname } from 'node:os';
import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { Operator } from '../operator/controller.ts';
import { formatKVStore } from '../operator/format.ts';
import { API_GROUP, PLURAL, type KVStore } from '../operator/spec.ts';
import { ExitCode, UsageError, parse } from './args.ts';

const OPERATOR_HELP = `Usage: kvs operator [--namespace NS] [--kubeconfig FILE] [--http-port N] [--identity NAME]

Runs the kvctl operator: reconciles the KVStore resources of one namespace (shards, replicas,
image), live. Several may run; a Lease elects the one that acts.

  --namespace NS      namespace to manage (default: $POD_NAMESPACE, the kubeconfig's, or "default")
  --kubeconfig FILE   kubeconfig (default: in-cluster service account, else $KUBECONFIG / ~/.kube/config)
  --http-port N       /healthz and /metrics (default 8080)
  --identity NAME     name in the Lease (default: $POD_NAME or the host name)
  --lease NAME        Lease name (default kvctl)`;

const KVSTORE_HELP = `Usage: kvs kvstore status [NAME] [--namespace NS] [--kubeconfig FILE]

Prints each KVStore's phase, current step, groups (replicas, leader, partitions, image),
conditions with their reasons, and any membership change in flight.`;

export async function runOperator(argv: string[]): Promise<number> {
  const args = parse(argv, { namespace: { type: 'string' }, kubeconfig: { type: 'string' }, 'http-port': { type: 'string' }, identity: { type: 'string' }, lease: { type: 'string' } }, OPERATOR_HELP);
  if (!args) return ExitCode.Ok;
  const v = args.values;
  const kc = loadKubeConfig(v.kubeconfig as string | undefined);
  const port = v['http-port'] === undefined ? 8080 : Number(v['http-port']);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError('--http-port must be a port number');
  const op = new Operator(kc, {
    namespace: namespaceOf(kc, v.namespace as string | undefined),
    identity: String(v.identity ?? process.env.POD_NAME ?? hostname()),
    leaseName: String(v.lease ?? 'kvctl'),
    httpPort: port,
    // Exit code 1: the pod restarts, and runs for the Lease again as a candidate.
    onLeadershipLost: () => process.exit(1),
  });
  await op.start();
  const stop = (): void => void op.stop().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  return -1; // keep running
}

export async function runKVStore(argv: string[]): Promise<number> {
  const args = parse(argv, { namespace: { type: 'string' }, kubeconfig: { type: 'string' } }, KVSTORE_HELP, [1, 2]);
  if (!args) return ExitCode.Ok;
  const [sub, name] = args.positionals;
  if (sub !== 'status') throw new UsageError(`expected "status", got "${sub}"\n\n${KVSTORE_HELP}`);
  const kc = loadKubeConfig(args.values.kubeconfig as string | undefined);
  const namespace = namespaceOf(kc, args.values.namespace as string | undefined);
  const api = kc.makeApiClient(CustomObjectsApi);
  const base = { group: API_GROUP, version: 'v1alpha1', namespace, plural: PLURAL };
  let items: KVStore[];
  if (name) {
    try {
      items = [(await api.getNamespacedCustomObject({ ...base, name })) as KVStore];
    } catch (e) {
      if ((e as { code?: number }).code === 404) {
        console.error(`kvs: no KVStore "${name}" in namespace ${namespace}`);
        return ExitCode.NotFound;
      }
      throw e;
    }
  } else {
    items = ((await api.listNamespacedCustomObject(base)) as { items: KVStore[] }).items;
  }
  if (items.length === 0) {
    console.log(`no KVStore in namespace ${namespace}`);
    return ExitCode.Ok;
  }
  console.log(items.map((kv) => formatKVStore(kv, new Date())).join('\n\n'));
  return ExitCode.Ok;
}

function loadKubeConfig(file: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (file) kc.loadFromFile(file);
  else kc.loadFromDefault();
  if (!kc.getCurrentCluster()) throw new UsageError('no Kubernetes cluster configured (give --kubeconfig, or run in a pod)');
  return kc;
}

function namespaceOf(kc: KubeConfig, given: string | undefined): string {
  return given ?? process.env.POD_NAMESPACE ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
}
