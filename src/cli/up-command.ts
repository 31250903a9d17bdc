// `kvs up`: a local sharded cluster of replica processes on 127.0.0.1, supervised until Ctrl-C.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { KvsClient } from '../client/client.ts';
import { initCluster, readConfig } from '../resharding/admin.ts';
import { createPartitioner, type Partitioner } from '../partition/index.ts';
import { DEGRADED_GRACE_MS, describeDown, keyPerGroup, notServing, startDecision, writeThroughEveryDoor, type DownReplica, type ReplicaStatus } from './cluster-ready.ts';
import { STARTING_FILE, placementEndpoints, readCluster, unpublishCluster, writeCluster, type ClusterReplica } from './cluster-file.ts';
import { serveControl, type ControlRequest } from './control.ts';
import { DOOR_PORT_OFFSETS, LOCAL_PORT_SPAN, MAX_LOCAL_REPLICAS, addedGroup, addedReplica, basePortOf, ephemeralOverlap, parsePortRange, shardedLayout } from './layout.ts';
import { ExitCode, UsageError, parse } from './args.ts';
import { childLabel } from '../log/child-lines.ts';
import { ProcessPerReplica, SharedHosts, type ReplicaLauncher } from './replica-launcher.ts';
import { balanceLeaders, placesOf, settleLeaders, type AskedMove } from './leader-balance.ts';
import { intentPath } from './spread-group.ts';
import { defaultLogFormat, isLogFormat } from '../log/logger.ts';

/**
 * A launch that ran this long counts as started even if its launcher cannot say so (one `kvs
 * server` process per replica): a damaged store or a port in use fails within a second or two.
 */
export const START_GRACE_MS = 10_000;

const HELP = `Usage: kvs up [--data DIR] [--shards N] [--replicas R] [--processes N|each] [--base-port P] [--log-format json|text]

Starts a local cluster on 127.0.0.1: the placement group (R replicas, group 0: it holds the cluster
configuration) and N shard groups of R replicas (defaults: N = 3, R = 3), data under DIR (default
./data), and writes DIR/cluster.json with every replica's id, group, pid, data dir and endpoints
once the cluster serves and its leaders are spread over the processes, and says "ready". A replica that cannot start does not hold that up: once
it failed a start (or ${DEGRADED_GRACE_MS / 1000} s after every group served from a majority of its replicas), kvs up
says "ready (degraded: replica ... not answering)" instead.
Running it again on the same DIR reuses the same layout and recovers the data.
A replica that crashes is restarted after a second (its pid in cluster.json is kept current; the
pid is its process's, which with --processes N it shares with other replicas). One that keeps
failing to start (it exits before it listens, or by itself within ${START_GRACE_MS / 1000} s) waits twice as long each
time, up to 30 s; one killed from outside after it had started, or that ran ${START_GRACE_MS / 1000} s, restarts after 1 s.
"kvs reshard --shards N" changes the number of shard groups of the running cluster; "kvs replica
add|remove" adds or removes one replica of a shard group, and keeps the group spread over the
processes (at most one replica of a group per process while there are as many processes as replicas).
Ctrl-C (SIGINT) or SIGTERM stops every replica gracefully (a leader hands over first).

  --data DIR         data directory (default ./data)
  --shards N         shard groups (default 3)
  --replicas R       replicas per group (default 3)
  --processes N      run the replicas in N processes (default 3), each replica still with its own
                     ports and data; with R processes each holds one replica of every group, so
                     losing one process costs every group one replica. "each": one process per
                     replica (the Kubernetes layout)
  --base-port P      first port (default 7001). The n-th replica (from 0) listens on: native P+n,
                     RESP P+${DOOR_PORT_OFFSETS.resp}+n, gRPC P+${DOOR_PORT_OFFSETS.grpc}+n, HTTP P+${DOOR_PORT_OFFSETS.http}+n (WebSocket at /v1/ws on the HTTP port);
                     replicas 100 and up: the same from P+400 for each further 100. Keep the ports
                     below the ephemeral range (Linux: 32768 and up), where an outgoing connection
                     can hold a port a restarting replica needs (kvs up warns)
  --log-format F     the replicas' log lines: json (passed through; each names its group and
                     replica) or text (each prefixed [shard-1/r102]); default text on a terminal`;

/** `kvs server` flags for the front doors listed in a replica's endpoints (older cluster files have none). */
function doorFlags(endpoints: ClusterReplica['endpoints']): string[] {
  return (['resp', 'grpc', 'http'] as const).flatMap((d) => (endpoints[d] ? [`--${d}`, endpoints[d]] : []));
}

export async function runUp(argv: string[]): Promise<number> {
  const startedAt = Date.now();
  const args = parse(argv, { data: { type: 'string' }, shards: { type: 'string' }, replicas: { type: 'string' }, 'base-port': { type: 'string' }, 'log-format': { type: 'string' }, processes: { type: 'string' } }, HELP);
  if (!args) return ExitCode.Ok;
  // Every flag is checked before the disk is touched: a refused `kvs up` leaves no data directory
  // behind, and does not unpublish the cluster file of one that exists (found by an outside test).
  const logFormat = args.values['log-format'] ?? defaultLogFormat();
  if (!isLogFormat(logFormat)) throw new UsageError('--log-format must be json or text');
  const processes = processesOf(args.values.processes);
  const perGroup = Number(args.values.replicas ?? 3);
  if (!Number.isInteger(perGroup) || perGroup < 1 || perGroup > 9) throw new UsageError('--replicas must be 1..9');
  // --shards and --base-port shape a new layout only (an existing one is reused), but a bad value
  // is refused either way rather than ignored.
  const shards = Number(args.values.shards ?? 3);
  const base = Number(args.values['base-port'] ?? 7001);
  if (!Number.isInteger(shards) || shards < 1 || (shards + 1) * perGroup > MAX_LOCAL_REPLICAS) throw new UsageError(`--shards must be 1..${Math.floor(MAX_LOCAL_REPLICAS / perGroup) - 1}`);
  if (!Number.isInteger(base) || base < 1024 || base + LOCAL_PORT_SPAN > 65536) {
    throw new UsageError(`--base-port must leave room for the doors (up to base+${LOCAL_PORT_SPAN - 1}) in 1024..65535`);
  }
  const dataDir = resolve(String(args.values.data ?? 'data'));
  mkdirSync(dataDir, { recursive: true });
  lockDataDir(dataDir);
  // cluster.json tells clients the cluster serves: until it does again, the layout waits aside.
  let replicas = readCluster(dataDir);
  if (replicas.length > 0) unpublishCluster(dataDir);
  else replicas = readCluster(dataDir, STARTING_FILE);
  if (replicas.length === 0) replicas = shardedLayout(dataDir, base, shards, perGroup);
  warnEphemeralPorts(basePortOf(replicas));
  const launcher: ReplicaLauncher = processes === 'each' ? new ProcessPerReplica() : new SharedHosts(processes, undefined, (k) => join(dataDir, `p${k}`));
  let stopping = false;
  // Set once the shard groups are launched; a replica can refuse its configuration (and stop the
  // cluster) before that.
  const started: { control?: { close(): void } } = {};
  let published = false;
  const save = (): void => writeCluster(dataDir, replicas, published ? undefined : STARTING_FILE);
  const peersOf = (g: number): string => replicas.filter((r) => r.group === g).map((r) => `${r.id}=${r.endpoints.native}`).join(',');

  /** Per replica: its last launch (restartDelayMs), and how many launches in a row failed to start. */
  const runs = new Map<number, Run>();
  /** Replicas that exited since this `kvs up` launched them: readiness need not wait for them. */
  const exited = new Set<number>();
  const launch = (r: ClusterReplica): void => {
    const run = runs.get(r.id) ?? { startedAt: 0, started: false, failures: 0 };
    run.startedAt = Date.now();
    run.started = false;
    runs.set(r.id, run);
    const argv = ['--id', String(r.id), '--group', String(r.group), '--listen', r.endpoints.native, '--data', r.dataDir, '--replicas', peersOf(r.group), ...doorFlags(r.endpoints)];
    if (r.role === 'shard') argv.push('--placement', placementEndpoints(replicas).join(','));
    if (r.join) argv.push('--join');
    argv.push('--log-format', logFormat);
    const label = logFormat === 'text' ? childLabel(r.role === 'placement' ? 'placement' : 'shard', r.group, r.id) : undefined;
    r.pid = launcher.launch({ id: r.id, group: r.group, argv, label }, (code, signal) => {
      if (stopping || !replicas.includes(r)) return;
      exited.add(r.id);
      if (code === ExitCode.Usage) {
        console.error(`kvs up: replica ${r.id} rejected its configuration; stopping the cluster`);
        process.exitCode = ExitCode.Failed;
        stop();
        return;
      }
      const delayMs = restartDelayMs(run, Date.now(), signal);
      const how = signal ?? (code === null ? 'its process did not start' : `code ${code}`);
      console.error(`kvs up: replica ${r.id} exited (${how}); restarting in ${delayMs / 1000} s`);
      setTimeout(() => {
        if (!stopping && replicas.includes(r)) launch(r);
      }, delayMs);
    }, () => {
      run.started = true;
    });
    save();
  };

  // Ctrl-C while the cluster still starts stops what was started.
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  // The placement group first, then the first configuration, then the shard groups.
  for (const r of replicas.filter((x) => x.role === 'placement')) launch(r);
  const groups = [...new Set(replicas.filter((r) => r.role === 'shard').map((r) => r.group))];
  const groupInfos = groups.map((g) => ({ id: g, replicas: replicas.filter((r) => r.group === g).map((r) => ({ id: r.id, address: r.endpoints.native })) }));
  // The placement replicas may take a while to start on a busy machine: wait for them, saying so.
  for (let tries = 1; ; tries++) {
    try {
      await initCluster(placementEndpoints(replicas), groupInfos);
      break;
    } catch (e) {
      if (stopping) return -1;
      console.log(`kvs up: waiting for the placement group to store the cluster configuration (${(e as Error).message})`);
      await new Promise((r) => setTimeout(r, Math.min(1000 * tries, 5000)));
    }
  }
  for (const r of replicas.filter((x) => x.role === 'shard')) launch(r);

  const control = await serveControl(dataDir, async (req: ControlRequest) => {
    if (req.cmd === 'add-group') {
      if (replicas.some((r) => r.group === req.group)) return;
      const added = addedGroup(dataDir, replicas, req.group, perGroupOf(replicas));
      replicas.push(...added);
      for (const r of added) launch(r);
    } else if (req.cmd === 'add-replica') {
      if (!replicas.some((r) => r.group === req.group && r.role === 'shard')) throw new Error(`no shard group ${req.group} in this cluster`);
      const r = addedReplica(dataDir, replicas, req.group, existsSync);
      if (req.host !== undefined && launcher instanceof SharedHosts) launcher.place(r.id, r.group, req.host);
      replicas.push(r);
      launch(r);
      return { replica: { id: r.id, address: r.endpoints.native } };
    } else if (req.cmd === 'layout') {
      const hosts = launcher instanceof SharedHosts ? launcher : undefined;
      const shards = replicas.filter((r) => r.role === 'shard');
      return { layout: { hosts: hosts?.count ?? 0, replicas: shards.map((r) => ({ id: r.id, group: r.group, host: hosts?.hostOf(r.id, r.group) ?? -1, address: r.endpoints.native })) } };
    } else if (req.cmd === 'stop-replica') {
      const r = replicas.find((x) => x.id === req.id && x.group === req.group && x.role === 'shard');
      if (!r) return;
      replicas = replicas.filter((x) => x !== r);
      save();
      await launcher.stop(r.id);
      if (launcher instanceof SharedHosts) launcher.forget(r.id);
    } else {
      const leaving = replicas.filter((r) => r.group === req.group && r.role === 'shard');
      replicas = replicas.filter((r) => !leaving.includes(r));
      save();
      await Promise.all(leaving.map((r) => launcher.stop(r.id)));
      if (launcher instanceof SharedHosts) for (const r of leaving) launcher.forget(r.id);
      rmSync(intentPath(dataDir, req.group), { force: true }); // an interrupted spread of a group now gone
    }
  }).catch((e: Error) => e);
  // Without its control socket this kvs up could not be managed (kvs reshard, kvs replica): it
  // stops what it started rather than run a cluster nobody can change.
  if (control instanceof Error) {
    if (stopping) return -1;
    console.error(`kvs up: ${control.message}; stopping the cluster`);
    process.exitCode = ExitCode.Failed;
    stop();
    return -1;
  }
  started.control = control;
  if (stopping) control.close();

  console.log(`kvs up: ${replicas.length} replicas (placement group + ${groups.length} shard groups), data in ${dataDir}`);
  for (const r of replicas) {
    const doors = Object.entries(r.endpoints).map(([door, addr]) => `${door} ${addr}`).join(', ');
    console.log(`  ${r.role === 'placement' ? 'placement' : `shard ${r.group}`} replica ${r.id} (pid ${r.pid}): ${doors}`);
  }
  const settle = launcher instanceof SharedHosts ? leaderSettler(launcher) : undefined;
  void waitUntilServing(() => replicas, () => stopping, (id) => exited.has(id), settle).then((degraded) => {
    if (!degraded) return;
    published = true;
    save();
    const took = `${((Date.now() - startedAt) / 1000).toFixed(1)} s`;
    if (degraded.length === 0) {
      console.log(`kvs up: ready in ${took}: every group has a leader, every replica applied the configuration, writes go through every door`);
    } else {
      console.log(`kvs up: ready in ${took} (degraded: ${degraded.map(describeDown).join('; ')}): every group has a leader known by a majority, every replica that answers applied the configuration, writes go through the doors of every replica that serves`);
    }
    console.log(`cluster file: ${join(dataDir, 'cluster.json')}   try: kvs put hello world && kvs get hello && kvs status`);
    if (degraded.length > 0) void sayWhenBack(degraded, () => replicas, () => stopping);
    if (launcher instanceof SharedHosts) void keepLeadersBalanced(launcher, () => replicas, () => stopping);
  });

  function stop(): void {
    if (stopping) return;
    stopping = true;
    started.control?.close();
    console.error('kvs up: stopping replicas');
    const force = setTimeout(() => launcher.killAll(), 5000);
    void launcher.stopAll().then(() => {
      clearTimeout(force);
      for (const r of replicas) r.pid = 0;
      save();
      process.exit(process.exitCode ?? 0);
    });
  }
  return -1;
}

/**
 * One `kvs up` per data directory: a second one (an outside test started one beside a running
 * cluster) unpublished the first's cluster file, took its control socket, said "ready" from the
 * first one's ports, and left the first unmanageable. `up.pid` holds the running one's pid; a
 * file whose process is gone (kill -9) is taken over.
 */
function lockDataDir(dataDir: string): void {
  const path = join(dataDir, 'up.pid');
  for (let tries = 0; ; tries++) {
    try {
      writeFileSync(path, `${process.pid}\n`, { flag: 'wx' });
      process.on('exit', () => {
        if (readFileSync(path, 'utf8').trim() === String(process.pid)) rmSync(path, { force: true });
      });
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || tries > 0) throw e;
    }
    const pid = Number(readFileSync(path, 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) {
      throw new UsageError(`another "kvs up" (pid ${pid}) runs the cluster in ${dataDir}; stop it first (or remove ${path} if that process is not kvs up)`);
    }
    rmSync(path, { force: true }); // left by a kvs up that was killed
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** `--processes`: a count of host processes (default 3), or `each` for one process per replica. */
function processesOf(v: string | boolean | undefined): number | 'each' {
  if (v === undefined) return 3;
  if (v === 'each') return 'each';
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > MAX_LOCAL_REPLICAS) throw new UsageError(`--processes must be 1..${MAX_LOCAL_REPLICAS} or "each"`);
  return n;
}

function perGroupOf(replicas: ClusterReplica[]): number {
  return replicas.filter((r) => r.role === 'placement').length || 3;
}

/** Every 2 s, one leadership moves while one process leads 2 groups more than another. */
async function keepLeadersBalanced(hosts: SharedHosts, current: () => ClusterReplica[], stopping: () => boolean): Promise<void> {
  const status = new KvsClient({ endpoints: current().map((r) => r.endpoints.native), timeoutMs: 1000 });
  try {
    await balanceLeaders({
      hosts: hosts.count,
      everyMs: 2000,
      maxEveryMs: 16_000,
      stopped: stopping,
      leadAway: (from, to) => hosts.leadAway(from, to),
      places: async () => {
        const rows = await Promise.all(current().map(async (r) => ({ id: r.id, group: r.group, placement: r.role === 'placement', status: await status.status(r.endpoints.native).catch(() => undefined) })));
        return placesOf(rows, hosts);
      },
    });
  } finally {
    status.close();
  }
}

/**
 * Spreads the leaders over the host processes before "ready" (settleLeaders): no new move after
 * 10 s, each move given 2 s to show. Returns why "ready" still waits, or undefined.
 */
function leaderSettler(hosts: SharedHosts): (rows: ReplicaStatus[]) => string | undefined {
  let since: number | undefined;
  let asked: AskedMove | undefined;
  return (rows) => {
    const now = Date.now();
    since ??= now;
    const step = settleLeaders(placesOf(rows, hosts), hosts.count, { since, now, asked, limitMs: 10_000, showMs: 2000 });
    if (step.move) hosts.leadAway(step.move.from, step.move.to);
    asked = step.asked;
    return step.waiting;
  };
}

/**
 * Waits until the cluster serves (src/cli/cluster-ready.ts), printing what it still waits for
 * whenever that changes. `settle`, once it serves, says why "ready" should wait still (leaders
 * being spread). Resolves with the replicas that do not serve (empty: every one does), or
 * undefined if `kvs up` is stopping first.
 */
async function waitUntilServing(
  current: () => ClusterReplica[],
  stopping: () => boolean,
  failedStart: (id: number) => boolean,
  settle?: (rows: ReplicaStatus[]) => string | undefined,
): Promise<DownReplica[] | undefined> {
  let said = '';
  let partitioner: Partitioner | undefined;
  let quorumSince: number | undefined;
  const status = new KvsClient({ endpoints: current().map((r) => r.endpoints.native), timeoutMs: 1000 });
  try {
    const look = (replicas: ClusterReplica[]): Promise<ReplicaStatus[]> =>
      Promise.all(
        replicas.map(async (r) => ({
          id: r.id,
          endpoint: r.endpoints.native,
          group: r.group,
          placement: r.role === 'placement',
          status: await status.status(r.endpoints.native).catch(() => undefined),
        })),
      );
    while (!stopping()) {
      const replicas = current();
      const rows = await look(replicas);
      const config = await readConfig(placementEndpoints(replicas)).catch(() => undefined);
      const verdict = notServing(rows, config);
      const now = Date.now();
      quorumSince = verdict.reasons.length > 0 ? undefined : (quorumSince ?? now);
      const decision = startDecision(verdict, { now, quorumSince, failedStart });
      let reasons = decision.ready ? [] : decision.waiting;
      // Leaders are spread among the replicas that serve (a degraded one cannot take a leadership).
      const down = new Set(decision.ready ? decision.degraded.map((d) => d.id) : []);
      const unsettled = (now: ReplicaStatus[]): string | undefined => settle?.(now.filter((r) => !down.has(r.id)));
      const waitSettle = decision.ready ? unsettled(rows) : undefined;
      if (waitSettle) reasons = [waitSettle];
      else if (decision.ready && config) {
        partitioner = partitioner?.partitions === config.partitions ? partitioner : await createPartitioner(config.partitions);
        reasons = await writeThroughEveryDoor(
          replicas.filter((r) => !down.has(r.id)).map((r) => r.endpoints.native),
          keyPerGroup(config, partitioner, 'kvs-up-ready-'),
          5000,
        );
        // An election during those writes (a loaded machine) can undo the spread, or be under way
        // still: one more look, at both.
        if (reasons.length === 0) {
          const again = await look(replicas);
          const serving = notServing(again, config).reasons;
          const after = serving.length > 0 ? serving : [unsettled(again)].filter((r) => r !== undefined);
          if (after.length === 0) return decision.degraded;
          reasons = after;
        }
      }
      const line = reasons.join('; ');
      if (line !== said) console.log(`kvs up: starting: ${line}`);
      said = line;
      await new Promise((r) => setTimeout(r, 250));
    }
    return undefined;
  } finally {
    status.close();
  }
}

/** After a degraded start: says so when a replica that did not serve answers again (every 2 s). */
async function sayWhenBack(down: DownReplica[], current: () => ClusterReplica[], stopping: () => boolean): Promise<void> {
  const status = new KvsClient({ endpoints: down.map((d) => d.endpoint), timeoutMs: 1000 });
  try {
    let waiting = down;
    while (waiting.length > 0 && !stopping()) {
      await new Promise((r) => setTimeout(r, 2000));
      // One removed meanwhile (kvs replica remove) is no longer waited for.
      const ids = new Set(current().map((r) => r.id));
      waiting = waiting.filter((d) => ids.has(d.id));
      const back = await Promise.all(waiting.map(async (d) => (await status.status(d.endpoint).catch(() => undefined))?.leaderId ? d : undefined));
      for (const d of back) if (d) console.log(`kvs up: replica ${d.id} at ${d.endpoint} is back: it answers and knows its leader`);
      waiting = waiting.filter((d) => !back.includes(d));
    }
  } finally {
    status.close();
  }
}

/** Signals that end a process from outside (an operator, a supervisor, the OOM killer); SIGABRT or SIGSEGV is its own crash. */
const OUTSIDE_KILLS = new Set<NodeJS.Signals>(['SIGKILL', 'SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT']);

/** A launch of a replica: when, and whether it reported that it started (SharedHosts). */
export interface Run {
  startedAt: number;
  started: boolean;
  /** Launches in a row that failed to start. */
  failures: number;
}

/**
 * How long to wait before restarting a replica that exited: 1 s, doubling with each launch in a row
 * that failed to start (a damaged store, a port in use), up to 30 s, so a replica that cannot start
 * does not restart every second for good. A launch that ran START_GRACE_MS, or had started
 * (reported so) and was then killed from outside (`signal`), was not a failed start: it restarts
 * after 1 s and the count starts over (an outside kill -9 of a healthy process used to count, and
 * the third within a minute waited 4 s, later ones up to 30 s). A started replica that exits by
 * itself within START_GRACE_MS still counts: one that fails right after it listens restarted every
 * second for good otherwise.
 */
export function restartDelayMs(run: Run, now: number, signal: NodeJS.Signals | null = null): number {
  const killed = signal !== null && OUTSIDE_KILLS.has(signal);
  const started = (run.started && killed) || now - run.startedAt >= START_GRACE_MS;
  run.failures = started ? 0 : run.failures + 1;
  return Math.min(30_000, 1000 * 2 ** Math.max(0, run.failures - 1));
}

/**
 * Says so when the cluster's ports reach into the kernel's ephemeral range: a replica restarted
 * after a crash then fails to listen (EADDRINUSE) while an outgoing connection holds its port, and
 * stays down through its restarts (an outside fault test: --base-port 34001, a RESP port taken).
 */
function warnEphemeralPorts(base: number): void {
  let text: string;
  try {
    text = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8');
  } catch {
    return; // not Linux: nothing to compare with
  }
  const overlap = ephemeralOverlap(base, parsePortRange(text));
  if (!overlap) return;
  console.error(
    `kvs up: warning: ports ${overlap[0]}-${overlap[1]} of this cluster (base port ${base}) are in the ephemeral range ${text.trim().replace(/\s+/, '-')}: ` +
      'a replica that restarts may find its port taken by an outgoing connection and fail to listen (EADDRINUSE); choose a --base-port below it',
  );
}
