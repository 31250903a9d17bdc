// `kvs bench` / `node --import tsx bench/load.ts`: the load generator against a running system.
// Prints a human summary and, last, one JSON line (see bench/load/summary.ts for its fields).
//
//   node --import tsx bench/load.ts --cluster ./data --workload A --dist zipf --inflight 64
//   node --import tsx bench/load.ts --protocol resp --endpoints 127.0.0.1:6379 --workload C --preload
//   node --import tsx bench/load.ts --protocol etcd --endpoints 127.0.0.1:2379 --rate 2000
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { PROTOCOLS, type Protocol } from './drivers/index.ts';
import type { DriverTarget } from './load/driver.ts';
import { runGenerator } from './load/generator.ts';
import { KeySpace } from './load/keys.ts';
import { clusterTarget, endpointsTarget } from './load/target.ts';
import { humanLine, resultLine } from './load/summary.ts';
import { DEFAULT_SPEC, parseWorkload, type LoadSpec } from './load/workload.ts';
import { machine, printResult } from './machine.ts';

const HELP = `Usage: kvs bench [options]

Load generator: closed loop (--inflight requests outstanding) or open loop (--rate arrivals/s,
Poisson, latency counted from each arrival's intended time). Warm-up, then a measured window.

Target:
  --protocol P        native (default), resp, etcd, kvs-grpc
  --cluster DIR       a cluster started by "kvs up" (DIR/cluster.json: endpoints and pids)
  --endpoints LIST    host:port,... (instead of --cluster)
  --writes-to W       leader (default: found via STATUS / etcdctl), all, or host:port
  --reads R           all (default: round-robin over every endpoint) or leader
  --stale             stale reads (default linearizable)
  --no-sessions       native writes with clientId 0 (no exactly-once record)
  --server-pids LIST  pids whose CPU to report (default: from cluster.json)
  --system NAME       label for the report (default: the protocol)
Workload:
  --workload W        write (default), A (50/50 read/update), B (95/5), C (read-only)
  --dist D            uniform (default) or zipf (θ = 0.99, scrambled)
  --keys N            key count (default ${DEFAULT_SPEC.keys})
  --key-size B        bytes (default ${DEFAULT_SPEC.keySize}); --value-size B (default ${DEFAULT_SPEC.valueSize})
  --preload           write every key once before measuring (read workloads need it)
Load:
  --inflight N        requests in flight in total (default ${DEFAULT_SPEC.inflight}); with --rate, the cap
  --rate R            open loop at R requests/s in total
  --warmup S          seconds (default ${DEFAULT_SPEC.warmupS}); --duration S (default ${DEFAULT_SPEC.durationS})
  --procs P           generator processes (default 1); --conns C connections per endpoint per process (default 1)
  --seed N            key and op choice seed (default 1)`;

const OPTIONS = {
  protocol: { type: 'string' },
  cluster: { type: 'string' },
  endpoints: { type: 'string' },
  'writes-to': { type: 'string' },
  reads: { type: 'string' },
  stale: { type: 'boolean' },
  'no-sessions': { type: 'boolean' },
  'server-pids': { type: 'string' },
  system: { type: 'string' },
  workload: { type: 'string' },
  dist: { type: 'string' },
  keys: { type: 'string' },
  'key-size': { type: 'string' },
  'value-size': { type: 'string' },
  preload: { type: 'boolean' },
  inflight: { type: 'string' },
  rate: { type: 'string' },
  warmup: { type: 'string' },
  duration: { type: 'string' },
  procs: { type: 'string' },
  conns: { type: 'string' },
  seed: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function num(v: string | undefined, dflt: number, name: string, min = 0): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number >= ${min}`);
  return n;
}

export async function runBench(argv: string[]): Promise<number> {
  const { values: v } = parseArgs({ args: argv, options: OPTIONS, strict: true });
  if (v.help) {
    console.log(HELP);
    return 0;
  }
  const protocol = (v.protocol ?? 'native') as Protocol;
  if (!PROTOCOLS.includes(protocol)) throw new Error(`--protocol must be one of ${PROTOCOLS.join(', ')}`);
  const spec: LoadSpec = {
    workload: parseWorkload(v.workload ?? DEFAULT_SPEC.workload),
    dist: v.dist === 'zipf' ? 'zipf' : v.dist === undefined || v.dist === 'uniform' ? 'uniform' : (() => { throw new Error('--dist must be uniform or zipf'); })(),
    keys: num(v.keys, DEFAULT_SPEC.keys, 'keys', 1),
    keySize: num(v['key-size'], DEFAULT_SPEC.keySize, 'key-size', 1),
    valueSize: num(v['value-size'], DEFAULT_SPEC.valueSize, 'value-size', 0),
    inflight: num(v.inflight, v.rate ? 1024 : DEFAULT_SPEC.inflight, 'inflight', 1),
    rate: num(v.rate, 0, 'rate', 0),
    warmupS: num(v.warmup, DEFAULT_SPEC.warmupS, 'warmup', 0),
    durationS: num(v.duration, DEFAULT_SPEC.durationS, 'duration', 0.1),
    seed: num(v.seed, DEFAULT_SPEC.seed, 'seed', 0),
  };
  const procs = num(v.procs, 1, 'procs', 1);
  const topts = { protocol, writesTo: v['writes-to'] ?? 'leader', reads: v.reads ?? 'all' };
  let pids: number[] = (v['server-pids'] ?? '').split(',').filter(Boolean).map(Number);
  let target: DriverTarget;
  if (v.cluster) {
    const c = await clusterTarget(v.cluster, topts, new KeySpace(spec.keys, spec.keySize, spec.valueSize));
    target = c.target;
    if (pids.length === 0) pids = c.pids;
  } else if (v.endpoints) target = await endpointsTarget(v.endpoints.split(',').filter(Boolean), topts);
  else throw new Error('give --cluster DIR or --endpoints host:port,...');
  console.log(`# kvs bench ${argv.join(' ')}`);
  console.log(`# ${machine()}`);
  const routes = target.groups ?? [target];
  routes.forEach((g, i) => console.log(`# ${routes.length > 1 ? `shard group ${i + 1}: ` : ''}writes → ${g.write.join(',')}; reads → ${g.read.join(',')}`));
  const r = await runGenerator({
    protocol,
    target,
    spec,
    procs,
    conns: num(v.conns, 1, 'conns', 1),
    sessions: !v['no-sessions'],
    linearizable: !v.stale,
    preload: Boolean(v.preload),
    serverPids: pids,
    fork: false,
  });
  const line = resultLine('load', v.system ?? protocol, protocol, spec, r, { procs });
  console.log(humanLine(line));
  printResult(line);
  return r.ok > 0 ? 0 : 3;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  runBench(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      console.error(`bench: ${e instanceof Error ? e.message : String(e)}`);
      process.exit(2);
    },
  );
}
