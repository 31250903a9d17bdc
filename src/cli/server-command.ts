// `kvs server`: run one replica until SIGINT/SIGTERM (a leader hands over leadership first).
import { ConfigError, DEFAULTS, loadConfig } from '../server/config.ts';
import { KvsServer } from '../server/server.ts';
import { bootstrapCluster } from '../server/bootstrap.ts';
import { startServerTrace } from '../trace/server-trace.ts';
import { ExitCode, UsageError, parse } from './args.ts';

const HELP = `Usage: kvs server --id N --listen HOST:PORT --data DIR --replicas ID=HOST:PORT,... [options]

Runs one replica of a Raft group. Flags override the YAML file given with --config.

  --config FILE              YAML file with the same settings (camelCase keys: dataDir, tickMs, ...)
  --id N                     this replica's id (unique in the cluster, >= 1)
  --group N                  Raft group id (default ${DEFAULTS.group})
  --listen HOST:PORT         native door: clients and replica links
  --data DIR                 data directory (created if missing)
  --replicas LIST            every replica of the group, this one included: 1=127.0.0.1:7001,2=...
  --placement LIST           placement group's native addresses: makes this a shard group replica
  --join                     start outside the group's configuration and wait to be added with
                             "kvs replica add" (an empty data directory; --replicas then optional)
  --tick-ms N                Raft tick (default ${DEFAULTS.tickMs} ms)
  --election-ticks N         election timeout in ticks (default ${DEFAULTS.electionTicks})
  --heartbeat-ticks N        heartbeat interval in ticks (default ${DEFAULTS.heartbeatTicks})
  --request-timeout-ms N     per-request deadline (default ${DEFAULTS.requestTimeoutMs})
  --max-key-bytes N          largest key (default ${DEFAULTS.maxKeyBytes})
  --max-value-bytes N        largest value (default ${DEFAULTS.maxValueBytes})
  --log-tail N               log entries kept after compaction (default ${DEFAULTS.logTail})
  --handoff-wave N           partitions pulled per resharding wave (default ${DEFAULTS.handoffWave}): smaller
                             waves pause each moving partition for less time
  --resp HOST:PORT           RESP (Redis protocol) door: redis-cli, redis-benchmark, Redis clients
  --grpc HOST:PORT           gRPC door (service protos.KV in protos/kv.proto)
  --http HOST:PORT           HTTP door: /healthz /readyz /metrics /v1/status /v1/kv/{key},
                             and the native protocol over WebSocket at /v1/ws
  --trace                    print every message this replica sends to its peers, one line each,
                             on stdout (eBPF, or the in-process tap without CAP_BPF+CAP_NET_ADMIN)
  --trace-iface IF           interface for eBPF (default: lo for loopback, else the listen address's)
  --trace-format text|json   trace line format (default text)
On Kubernetes (docs/kubernetes.md): id, group, --replicas and --placement follow from the pod name.
  --pod-name NAME            StatefulSet pod "<set>-<ordinal>": set "placement" or "shard-N"
  --dns-suffix SUFFIX        after "<pod>.<set>." in the pods' DNS names, e.g. kvs.svc.cluster.local
  --group-size N             pods per StatefulSet (default 3)
  --placement-set NAME       a shard replica's placement StatefulSet (usually "placement")
  --bootstrap-groups LIST    a placement replica writes these shard sets (shard-0,shard-1,...) as
                             the first configuration unless one exists
Without --resp, --grpc or --http only the native door runs (see docs/doors.md).`;

const OPTIONS = {
  trace: { type: 'boolean' as const },
  join: { type: 'boolean' as const },
  ...Object.fromEntries(
    ['config', 'id', 'group', 'listen', 'data', 'replicas', 'placement', 'tick-ms', 'election-ticks', 'heartbeat-ticks', 'request-timeout-ms', 'max-key-bytes', 'max-value-bytes', 'log-tail', 'handoff-wave', 'resp', 'grpc', 'http', 'trace-iface', 'trace-format', 'pod-name', 'dns-suffix', 'group-size', 'placement-set', 'bootstrap-groups'].map((n) => [
      n,
      { type: 'string' as const },
    ]),
  ),
};

export async function runServer(argv: string[]): Promise<number> {
  const args = parse(argv, OPTIONS, HELP);
  if (!args) return ExitCode.Ok;
  let config;
  try {
    config = loadConfig(args.values as Record<string, string | undefined>);
  } catch (e) {
    if (e instanceof ConfigError) throw new UsageError(e.message);
    throw e;
  }
  const tracer = config.trace ? await startServerTrace({ ...config, trace: config.trace }) : undefined;
  const server = await KvsServer.start(config, { tap: tracer?.tap }).catch(async (e: unknown) => {
    await tracer?.stop();
    throw e;
  });
  console.error(`replica ${config.id} (group ${config.group}) listening on ${config.listen}, data in ${config.dataDir}`);
  let stopping = false;
  if (config.initialGroups) {
    const placement = config.replicas.map((r) => r.address);
    void bootstrapCluster({ placement, groups: config.initialGroups, log: (l) => console.error(l), stopped: () => stopping });
  }
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    console.error(`replica ${config.id}: ${signal}, shutting down`);
    void server
      .shutdown()
      .then(() => tracer?.stop())
      .then(() => process.exit(process.exitCode ?? 0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  return -1; // keep running
}
