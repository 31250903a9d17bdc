// `kvs trace`: watch the replica links of a local cluster with eBPF, one line per message.
import { resolve } from 'node:path';
import { splitHostPort, type ReplicaAddress } from '../trace/address-book.ts';
import { TraceUnavailableError, Tracer } from '../trace/tracer.ts';
import { buildHint } from '../trace/native.ts';
import { ExitCode, UsageError, parse } from './args.ts';
import { clusterPath, readCluster } from './cluster-file.ts';

/**
 * The usage text. The tracer's build is named as a missing build names it (buildHint): an
 * installed package has no Makefile, so it must not be told to run make there.
 */
export function traceHelp(packageRoot?: string): string {
  return `Usage: kvs trace [--data DIR] [--iface lo] [--format text|json] [options]

Prints every message the replicas of a local cluster exchange (Raft, forwarded requests, their
answers, handshakes), one line each, captured with eBPF from the network interface: the replicas
are not touched. Names and groups come from DIR/cluster.json (written by "kvs up"); the captured
port range spans the replicas' native ports. Needs CAP_BPF and CAP_NET_ADMIN (root) and the
built tracer (${buildHint(packageRoot)}); without them, run the replicas with "kvs server --trace".
A summary line (frames, undecodable, drops) follows every --summary-every seconds when something
changed, and at exit (Ctrl-C).

  --data DIR            cluster directory with cluster.json (default ./data)
  --replicas LIST       instead of cluster.json: 1=127.0.0.1:7001,2=... (group 0, or ID=HOST:PORT@GROUP)
  --iface IF            interface (default lo)
  --format text|json    one human-readable line, or one JSON object, per message (default text)
  --clients             client connections too (default: replica links only)
  --snap N              payload bytes captured per TCP segment, 64..4096 (default 4096)
  --summary-every S     seconds between summary lines, 0: only at exit (default 10)`;
}

const OPTIONS = {
  data: { type: 'string' as const },
  replicas: { type: 'string' as const },
  iface: { type: 'string' as const },
  format: { type: 'string' as const },
  clients: { type: 'boolean' as const },
  snap: { type: 'string' as const },
  'summary-every': { type: 'string' as const },
};

export async function runTrace(argv: string[]): Promise<number> {
  const args = parse(argv, OPTIONS, traceHelp());
  if (!args) return ExitCode.Ok;
  const v = args.values;
  const replicas = v.replicas !== undefined ? parseReplicas(String(v.replicas)) : fromClusterFile(resolve(String(v.data ?? 'data')));
  const format = String(v.format ?? 'text');
  if (format !== 'text' && format !== 'json') throw new UsageError('--format must be text or json');
  const snapLen = intFlag('snap', v.snap, 4096, 64, 4096);
  const every = intFlag('summary-every', v['summary-every'], 10, 0, 86_400);
  const ports = replicas.map((r) => splitHostPort(r.address).port);
  const iface = String(v.iface ?? 'lo');
  let tracer: Tracer;
  try {
    tracer = await Tracer.start({
      replicas,
      capture: 'ebpf',
      iface,
      ports: [Math.min(...ports), Math.max(...ports)],
      snapLen,
      // On lo every segment passes egress and ingress: one copy is enough.
      directions: iface === 'lo' ? 'egress' : 'both',
      format,
      includeClients: v.clients === true,
      summaryEveryMs: every * 1000,
      label: 'cluster',
    });
  } catch (e) {
    if (e instanceof TraceUnavailableError) {
      console.error(`kvs: trace: ${e.message}; run the replicas with "kvs server --trace" to trace through the in-process tap`);
      return ExitCode.Failed;
    }
    throw e;
  }
  const a = tracer.attach;
  const groups = new Set(replicas.map((r) => r.group));
  console.error(
    `trace: eBPF on ${iface} (${a?.mode}), ports ${Math.min(...ports)}-${Math.max(...ports)}, progs ${a?.ingressProgId}/${a?.egressProgId}, ` +
      `${replicas.length} replicas in ${groups.size} group(s); Ctrl-C to stop`,
  );
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void tracer.stop().then(() => process.exit(process.exitCode ?? 0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  process.stdout.on('error', stop); // the reader went away (kvs trace | head)
  return -1; // keep running
}

function fromClusterFile(dir: string): ReplicaAddress[] {
  const replicas = readCluster(dir);
  if (replicas.length === 0) throw new UsageError(`no cluster in ${dir} (${clusterPath(dir)} is missing; start one with "kvs up" or pass --replicas)`);
  return replicas.map((r) => ({ id: r.id, group: r.group, address: r.endpoints.native }));
}

/** `1=127.0.0.1:7001,2=127.0.0.1:7002` or with groups `101=127.0.0.1:7004@1`. */
export function parseReplicas(list: string): ReplicaAddress[] {
  const out = list
    .split(',')
    .filter((s) => s.trim() !== '')
    .map((item) => {
      const m = /^\s*(\d+)=([^@\s]+:\d+)(?:@(\d+))?\s*$/.exec(item);
      if (!m) throw new UsageError(`--replicas item "${item}" must be ID=HOST:PORT or ID=HOST:PORT@GROUP`);
      return { id: Number(m[1]), address: m[2]!, group: Number(m[3] ?? 0) };
    });
  if (out.length === 0) throw new UsageError('--replicas is empty');
  return out;
}

function intFlag(name: string, v: string | boolean | undefined, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer in [${min}, ${max}]`);
  return n;
}
