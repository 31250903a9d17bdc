// End to end on real replicas (docs/operator.md): the operator, as its own process, against the
// fake API server, whose StatefulSets a stand-in kubelet runs as real processes: each pod's
// container as the operator wrote it (the image's entrypoint with the container's args, its
// environment, its mounted settings), on a loopback address of its own, with the pods' stable DNS
// names resolved by cluster-dns.js; so the pods' start logic under test is the shipped one (the
// identity a pod's name stands for: founders bootstrap, later pods join when their volume is
// empty). A readiness prober sets each pod's Ready from /readyz. A recorded workload runs throughout and is checked for
// linearizability; every acknowledged write must be readable at the end. Changes: shards 3 → 4 → 2,
// replicas 3 → 5 → 3, image kvs:1 → kvs:2 (a rolling restart of every pod; the same binary
// runs), shards 2 → 3, each with the operator killed (SIGKILL) in its middle and a new one
// started; then a follower loses its volume. After each change the status must tell the truth: groups, replica ids, leaders,
// partitions and images as the placement group and the replicas report them, conditions settled.
// Prints each change's duration, the longest pause a client saw, and failed requests (must be 0).
// Follow a run with KVS_E2E_PROGRESS=FILE (the status once a second).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { KvsClient } from '../../src/client/client.ts';
import { LABEL_GROUP_ID } from '../../src/operator/objects.ts';
import { groupName, replicaIdOf, PLACEMENT_GROUP } from '../../src/operator/reconcile.ts';
import type { KVStoreStatus } from '../../src/operator/spec.ts';
import { readConfig } from '../../src/resharding/admin.ts';
import { checkHistory } from '../lin/check.ts';
import type { Operation } from '../lin/history.ts';
import { reapOnExit } from '../support/processes.ts';
import { waitFor } from '../support/wait.ts';
import { FakeApiServer } from './fake-apiserver.ts';
import { StatefulSetShim } from './kubelet.ts';
import { containerEnv, type EnvVar } from './pod-env.ts';
import { podIp } from './cluster-dns.js';

const BIN = resolve(import.meta.dirname, '../../bin/kvs.js');
const DNS = resolve(import.meta.dirname, 'cluster-dns.js');
const NS = 'kvs';
const PLACEMENT_REPLICAS = 3;

type Obj = Parameters<FakeApiServer['put']>[2];
type PodContainer = { name: string; command?: string[]; args: string[]; env: EnvVar[]; volumeMounts: { name: string; mountPath: string }[] };
type PodSpec = { containers: PodContainer[]; volumes: { name: string; configMap?: { name: string } }[] };

// Each pod has its own loopback address (its "pod IP"), so every replica listens on the template's
// ports (7000 native, 8080 HTTP) as in a cluster; cluster-dns.js resolves the pods' stable names.
const addr = (group: number, ordinal: number): string => `${podIp(group, ordinal)}:7000`;
const httpUrl = (group: number, ordinal: number): string => `http://${podIp(group, ordinal)}:8080`;

/**
 * The kubelet: runs a pod's kvs container as the image would (`node dist/cli/main.js` + the
 * container's args), with the container's environment resolved from the pod, the settings
 * ConfigMap it mounts written to a file (the wildcard [::] in it is the pod's own address, as in its
 * network namespace), and a data directory per pod that outlives the pod (its volume).
 */
class Pods {
  readonly dir = mkdtempSync(join(tmpdir(), 'kvs-operator-e2e-'));
  readonly procs = new Map<string, { child: ChildProcess; exited: Promise<void>; group: number; ordinal: number; stopping: boolean }>();
  /** Each pod's stderr, across restarts. */
  readonly logs = new Map<string, string[]>();
  /** Processes that exited although their pod was not deleted (a crash, or a signal from outside). */
  readonly crashes: string[] = [];
  /** Pods deleted (by the operator, a scale-down, a group's deletion), in order. */
  readonly deleted: string[] = [];

  constructor(private readonly api: FakeApiServer) {}

  started(pod: Obj, sts: Obj): undefined {
    const group = Number(sts.metadata.labels![LABEL_GROUP_ID]);
    const ordinal = Number(pod.metadata.name.slice(sts.metadata.name.length + 1));
    const name = pod.metadata.name;
    const previous = this.procs.get(name)?.exited ?? Promise.resolve();
    // A restarted pod's process starts once the old one has exited (same address, same volume).
    void previous.then(() => this.spawn(pod, group, ordinal));
    return undefined;
  }

  private spawn(pod: Obj, group: number, ordinal: number): void {
    const name = pod.metadata.name;
    const spec = pod.spec as PodSpec;
    const c = spec.containers.find((x) => x.name === 'kvs')!;
    assert.equal(c.command, undefined, 'the image\'s entrypoint runs (node dist/cli/main.js)');
    const ip = podIp(group, ordinal);
    const mount = c.volumeMounts.find((m) => m.mountPath === '/etc/kvs')!;
    const configMap = spec.volumes.find((v) => v.name === mount.name)!.configMap!.name;
    const settings = (this.api.get('configmaps', NS, configMap)?.data as Record<string, string> | undefined)?.['kvs.yaml'];
    assert.ok(settings !== undefined, `ConfigMap ${configMap} exists before its pods start`);
    const configFile = join(this.dir, `${name}.kvs.yaml`);
    writeFileSync(configFile, settings.replaceAll(/(?:0\.0\.0\.0|\[::\]):/g, `${ip}:`));
    const env = containerEnv({ name, namespace: NS }, c.env);
    assert.equal(env.KVS_CONFIG, `${mount.mountPath}/kvs.yaml`);
    const child = reapOnExit(
      spawn(process.execPath, ['--import', DNS, BIN, ...c.args], { env: { ...process.env, ...env, KVS_CONFIG: configFile, KVS_DATA: join(this.dir, name) }, stdio: ['ignore', 'ignore', 'pipe'] }),
    );
    const log = this.logs.get(name) ?? [];
    this.logs.set(name, log);
    child.stderr!.on('data', (b: Buffer) => log.push(b.toString()));
    const exited = new Promise<void>((r) =>
      child.once('exit', (code, signal) => {
        if (!entry.stopping && !this.closed) this.crashes.push(`${name} exited on its own (${signal ?? code}) at ${new Date().toISOString()}`);
        r();
      }),
    );
    const entry = { child, exited, group, ordinal, stopping: false };
    this.procs.set(name, entry);
    // The kubelet restarts a container that exits on its own (restartPolicy Always).
    void exited.then(() => {
      if (!entry.stopping && !this.closed && this.procs.get(name) === entry) setTimeout(() => this.procs.get(name) === entry && !this.closed && this.spawn(pod, group, ordinal), 1000);
    });
  }

  private closed = false;

  stopped(pod: Obj): void {
    this.deleted.push(pod.metadata.name);
    const p = this.procs.get(pod.metadata.name);
    if (!p) return;
    p.stopping = true;
    p.child.kill('SIGTERM');
  }

  volumeDeleted(claim: Obj): void {
    const pod = claim.metadata.name.replace(/^data-/, '');
    const p = this.procs.get(pod);
    void (p?.exited ?? Promise.resolve()).then(() => rmSync(join(this.dir, pod), { recursive: true, force: true }));
  }

  async stopAll(): Promise<void> {
    this.closed = true;
    for (const p of this.procs.values()) p.child.kill('SIGKILL');
    await Promise.all([...this.procs.values()].map((p) => p.exited));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Readiness probes: /readyz of each running pod, written into the pod's Ready condition. */
function prober(api: FakeApiServer, shim: StatefulSetShim, pods: Pods): () => void {
  let stopped = false;
  const loop = async (): Promise<void> => {
    while (!stopped) {
      for (const pod of api.list('pods', NS)) {
        const p = pods.procs.get(pod.metadata.name);
        if (!p) continue;
        const ok = p.child.exitCode === null && (await fetch(`${httpUrl(p.group, p.ordinal)}/readyz`, { signal: AbortSignal.timeout(1500) }).then((r) => r.ok, () => false));
        const was = (pod.status as { conditions?: { status: string }[] } | undefined)?.conditions?.[0]?.status === 'True';
        if (ok !== was && api.get('pods', NS, pod.metadata.name)) shim.setReady(pod.metadata.name, ok);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  void loop();
  return () => {
    stopped = true;
  };
}

/** Clients doing get/put/cas on a few keys, recorded for the checker, plus writes to unique keys. */
class Workload {
  readonly history: Operation[] = [];
  readonly acked = new Map<string, string>();
  failed = 0;
  private running = true;
  private loops: Promise<void>[] = [];
  private lastOk = performance.now();
  longestPauseMs = 0;
  private pauseWindowStart = 0;

  start(endpoints: string[], clients = 2): void {
    for (let c = 0; c < clients; c++) {
      const client = new KvsClient({ endpoints, timeoutMs: 30_000 });
      this.loops.push(this.run(c, client).finally(() => client.close()));
    }
  }

  /** Starts measuring the longest gap between successful requests. */
  window(): void {
    this.longestPauseMs = 0;
    this.pauseWindowStart = performance.now();
    this.lastOk = this.pauseWindowStart;
  }

  private ok(): void {
    const now = performance.now();
    this.longestPauseMs = Math.max(this.longestPauseMs, now - this.lastOk);
    this.lastOk = now;
  }

  private async run(c: number, client: KvsClient): Promise<void> {
    const dec = new TextDecoder();
    for (let i = 0; this.running; i++) {
      const key = `k${(i * 7 + c) % 4}`;
      const kind = i % 3;
      const op: Operation = { clientId: c, op: kind === 0 ? 'get' : kind === 1 ? 'put' : 'cas', key, call: performance.now() };
      try {
        if (op.op === 'get') {
          const v = await client.get(key);
          op.output = v === null ? null : dec.decode(v);
        } else if (op.op === 'put') {
          op.value = `c${c}-${i}`;
          await client.put(key, op.value);
        } else {
          const seen = this.history.filter((h) => h.key === key && h.op === 'put').at(-1)?.value ?? null;
          op.expected = seen;
          op.value = `c${c}-${i}-cas`;
          const r = await client.cas(key, seen, op.value);
          op.output = r.ok;
        }
        op.ret = performance.now();
        this.ok();
        const u = `u${c}-${i}`;
        await client.put(u, String(i));
        this.acked.set(u, String(i));
        this.ok();
      } catch {
        this.failed++;
      }
      this.history.push(op);
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }
}


/** The operator as a process (operator-process.ts), killed with SIGKILL in the middle of a change. */
class OperatorProcess {
  readonly log: string[] = [];
  private readonly child: ChildProcess;
  private readonly exited: Promise<void>;
  private killed = false;

  /** `onExit`: the process ended without kill() (e.g. `kvs operator` exits when it loses its Lease). */
  constructor(url: string, identity: string, onExit?: () => void) {
    this.child = reapOnExit(spawn(process.execPath, ['--import', 'tsx', '--import', DNS, resolve(import.meta.dirname, 'operator-process.ts'), url, identity], { stdio: ['ignore', 'ignore', 'pipe'] }));
    this.child.stderr!.on('data', (b: Buffer) => this.log.push(b.toString()));
    this.exited = new Promise((r) => this.child.once('exit', () => r()));
    void this.exited.then(() => {
      if (!this.killed) onExit?.();
    });
  }

  async kill(): Promise<void> {
    this.killed = true;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

interface Expected {
  shardGroups: number[];
  replicas: number;
  image: string;
}

const PARTITIONS = 16;

test('end to end: shards 3 → 4 → 2 → 3, replicas 3 → 5 → 3, an image upgrade, the operator killed in each, under a checked workload', { timeout: 600_000 }, async () => {
  const api = new FakeApiServer();
  const url = await api.start();
  const pods = new Pods(api);
  const shim = new StatefulSetShim(api, NS, { started: (p, s) => pods.started(p, s), stopped: (p) => pods.stopped(p), volumeDeleted: (c) => pods.volumeDeleted(c), probed: true });
  const stopProbes = prober(api, shim, pods);
  const operators: OperatorProcess[] = [];
  // An operator that exits by itself (it lost its Lease: on a loaded machine a renewal can miss the
  // 2 s deadline) is replaced, as its Deployment would restart it. Before, nothing acted any more and
  // the test waited out its 600 s timeout.
  const startOperator = (): OperatorProcess => {
    const started: OperatorProcess = new OperatorProcess(url, `op-${operators.length + 1}`, () => {
      if (op === started) op = startOperator();
    });
    operators.push(started);
    return started;
  };
  const generation = (): number => Number(api.get('kvstores', NS, 'demo')!.metadata.generation ?? 0);
  const status = (): KVStoreStatus => (api.get('kvstores', NS, 'demo')!.status ?? {}) as KVStoreStatus;
  const setSpec = (change: Record<string, unknown>): void => {
    const kv = api.get('kvstores', NS, 'demo')!;
    api.put('kvstores', NS, { ...kv, spec: { ...(kv.spec as object), ...change } });
  };
  // Ready (every group has a ready quorum) at the latest generation, and every pod ready.
  const ready = () => waitFor('the store Ready at the latest generation, every pod ready', () => status().phase === 'Ready' && status().observedGeneration === generation() && (status().groups ?? []).every((g) => g.readyReplicas === g.replicas), 600_000, 100);
  const progressFile = process.env.KVS_E2E_PROGRESS;
  const progress = progressFile
    ? setInterval(() => {
        const st = status();
        appendFileSync(progressFile, `${new Date().toISOString()} ${st.phase} | ${st.currentStep} | ${st.lastError ?? ''} | ${st.conditions?.find((c) => c.type === 'Degraded')?.message ?? ''} | pods ${api.list('pods', NS).map((p) => `${p.metadata.name}:${(p.status as { conditions?: { status: string }[] })?.conditions?.[0]?.status}`).join(' ')}\n`);
      }, 1000)
    : undefined;
  const workload = new Workload();
  const report: string[] = [];

  /** The status against the spec, the placement group's configuration and the replicas themselves. */
  const checkStatus = async (want: Expected): Promise<void> => {
    const st = status();
    const cond = Object.fromEntries((st.conditions ?? []).map((c) => [c.type, c.status]));
    assert.deepEqual(cond, { Ready: 'True', Progressing: 'False', Resharding: 'False', Degraded: 'False' }, JSON.stringify(st.conditions));
    assert.equal(st.partitionsMoving, 0);
    assert.deepEqual(st.membershipInFlight ?? [], []);
    const config = (await readConfig(Array.from({ length: PLACEMENT_REPLICAS }, (_, o) => addr(PLACEMENT_GROUP, o))))!;
    assert.equal(st.epoch, config.epoch);
    assert.deepEqual(config.moves, []);
    assert.deepEqual(config.groups.map((g) => g.id), want.shardGroups, 'the configuration has the shard groups');
    const groups = st.groups ?? [];
    assert.deepEqual(groups.map((g) => g.name), [PLACEMENT_GROUP, ...want.shardGroups].map((id) => groupName('demo', id)));
    const client = new KvsClient({ endpoints: [addr(PLACEMENT_GROUP, 0)], timeoutMs: 5000 });
    try {
      for (const g of groups) {
        const size = g.id === PLACEMENT_GROUP ? PLACEMENT_REPLICAS : want.replicas;
        const ids = Array.from({ length: size }, (_, o) => replicaIdOf(g.id, o));
        assert.deepEqual([g.replicas, g.readyReplicas, g.image], [size, size, want.image], `${g.name}: replicas, ready, image`);
        assert.deepEqual([...g.voters].sort((a, b) => a - b), ids, `${g.name}: members`);
        if (g.id !== PLACEMENT_GROUP) {
          const listed = config.groups.find((x) => x.id === g.id)!.replicas;
          assert.deepEqual(listed.map((r) => r.id).sort((a, b) => a - b), ids, `${g.name}: the configuration's replicas`);
          assert.equal(g.partitions, config.owner.filter((o) => o === g.id).length, `${g.name}: partitions`);
        }
        // The leader named is the one its group follows (its own status and every member's).
        assert.ok(g.leader, `${g.name} has a leader`);
        const leaderOrdinal = Number(g.leader.slice(g.name.length + 1));
        const seen = await Promise.all(ids.map((_, o) => client.status(addr(g.id, o)).catch(() => undefined)));
        for (const s of seen) assert.equal(s?.leaderId, replicaIdOf(g.id, leaderOrdinal), `${g.name}: every replica follows ${g.leader}: ${JSON.stringify(seen)}`);
      }
    } finally {
      client.close();
    }
    assert.equal(groups.filter((g) => g.id !== PLACEMENT_GROUP).reduce((n, g) => n + (g.partitions ?? 0), 0), PARTITIONS);
  };

  /**
   * One change: set the spec, wait until `started` says the change is under way and the status
   * shows it (phase `phase`), kill the operator there and start another, wait for Ready.
   */
  let op: OperatorProcess | undefined;
  const step = async (name: string, change: Record<string, unknown>, phase: string, started: () => boolean, want: Expected): Promise<void> => {
    const failedBefore = workload.failed;
    workload.window();
    const t0 = performance.now();
    setSpec(change);
    await waitFor(`${name} under way`, () => started() && status().observedGeneration === generation() && status().phase === phase, 600_000, 20);
    await op!.kill();
    op = startOperator();
    await ready();
    const line = `${name}: ${((performance.now() - t0) / 1000).toFixed(1)} s, longest client pause ${workload.longestPauseMs.toFixed(0)} ms, failed requests ${workload.failed - failedBefore}`;
    report.push(line);
    console.log(line);
    if (pods.crashes.length > 0) console.log(pods.crashes.join('\n'));
    await checkStatus(want);
  };
  const shardSets = (): number => api.list('statefulsets', NS).length - 1;
  const inFlight = (): boolean => (status().membershipInFlight?.length ?? 0) > 0;
  try {
    api.put('kvstores', NS, { apiVersion: 'kvs.sharded-kvs.dev/v1alpha1', kind: 'KVStore', metadata: { name: 'demo' }, spec: { shards: 3, replicas: 3, placementReplicas: PLACEMENT_REPLICAS, partitions: PARTITIONS, image: 'kvs:1' } });
    op = startOperator();
    await ready();
    await checkStatus({ shardGroups: [1, 2, 3], replicas: 3, image: 'kvs:1' });
    const endpoints = [1, 2, 3, 4, 5].flatMap((g) => [0, 1, 2, 3, 4].map((o) => addr(g, o)));
    workload.start(endpoints);
    // Killed once group 4's objects exist (its pods start, then the reshard): the next operator resumes.
    await step('shards 3 → 4', { shards: 4 }, 'Resharding', () => shardSets() === 4, { shardGroups: [1, 2, 3, 4], replicas: 3, image: 'kvs:1' });
    await step('shards 4 → 2', { shards: 2 }, 'Resharding', () => (status().partitionsMoving ?? 0) > 0, { shardGroups: [1, 2], replicas: 3, image: 'kvs:1' });
    await step('replicas 3 → 5', { replicas: 5 }, 'Scaling', inFlight, { shardGroups: [1, 2], replicas: 5, image: 'kvs:1' });
    await step('replicas 5 → 3', { replicas: 3 }, 'Scaling', inFlight, { shardGroups: [1, 2], replicas: 3, image: 'kvs:1' });
    // The upgrade with two shard groups (9 pods, one at a time, a group's leader last).
    const deletedBefore = pods.deleted.length;
    const logMark = new Map([...pods.logs].map(([pod, l]) => [pod, l.length]));
    await step('image kvs:1 → kvs:2', { image: 'kvs:2' }, 'Upgrading', () => pods.deleted.length > deletedBefore, { shardGroups: [1, 2], replicas: 3, image: 'kvs:2' });
    // Every pod restarted once, and each group's leader handed leadership over before it stopped.
    const restarted = pods.deleted.slice(deletedBefore).sort();
    const all = api.list('pods', NS).map((p) => p.metadata.name).sort();
    assert.deepEqual(restarted, all, 'each pod restarted exactly once');
    for (const g of [PLACEMENT_GROUP, 1, 2]) {
      const name = groupName('demo', g);
      const handed = all.filter((p) => p.startsWith(`${name}-`) && (pods.logs.get(p) ?? []).slice(logMark.get(p) ?? 0).join('').includes('"msg":"handed leadership over"'));
      assert.ok(handed.length >= 1, `${name}: its leader handed leadership over before its restart`);
    }
    // Groups 3 and 4 kept their volumes (retention Retain): the new group takes a new id.
    await step('shards 2 → 3', { shards: 3 }, 'Resharding', () => shardSets() === 3, { shardGroups: [1, 2, 5], replicas: 3, image: 'kvs:2' });
    // A volume lost: a follower of shard group 1 comes back on an empty volume. The group is
    // configured, so the pod starts with --join; it votes only once the leader's snapshot gave it
    // the configuration, and is a member again without anyone re-adding it.
    {
      const failedBefore = workload.failed;
      workload.window();
      const t0 = performance.now();
      const g1 = status().groups!.find((g) => g.id === 1)!;
      const victim = `${g1.name}-${(Number(g1.leader!.slice(g1.name.length + 1)) + 1) % 3}`;
      const before = pods.procs.get(victim)!.child;
      const logMark = pods.logs.get(victim)!.length;
      api.remove('persistentvolumeclaims', NS, `data-${victim}`);
      api.remove('pods', NS, victim);
      await waitFor(`${victim} back on an empty volume and ready`, () => pods.procs.get(victim)?.child !== before && (api.get('pods', NS, victim)?.status as { conditions?: { status: string }[] } | undefined)?.conditions?.[0]?.status === 'True', 600_000, 50);
      await ready();
      const line = `volume lost (${victim}): ${((performance.now() - t0) / 1000).toFixed(1)} s, longest client pause ${workload.longestPauseMs.toFixed(0)} ms, failed requests ${workload.failed - failedBefore}`;
      report.push(line);
      console.log(line);
      assert.match(pods.logs.get(victim)!.slice(logMark).join(''), /"msg":"listening".*"joining":true/, 'it started empty, outside the configuration');
      await checkStatus({ shardGroups: [1, 2, 5], replicas: 3, image: 'kvs:2' });
    }
    await workload.stop();
    console.log(report.join('\n'));
    const check = checkHistory(workload.history.filter((o) => o.ret !== undefined || o.op !== 'get'));
    assert.equal(check.verdict, 'ok', check.text);
    const client = new KvsClient({ endpoints, timeoutMs: 30_000 });
    try {
      assert.ok(workload.acked.size > 100, `only ${workload.acked.size} writes acknowledged`);
      for (const [k, v] of workload.acked) {
        const got = await client.get(k);
        assert.equal(got === null ? null : new TextDecoder().decode(got), v, `acknowledged write ${k} lost`);
      }
    } finally {
      client.close();
    }
    assert.equal(workload.failed, 0, `failed requests:\n${report.join('\n')}`);
    assert.deepEqual(pods.crashes, [], 'no replica process exited unless its pod was deleted');
  } catch (e) {
    const logs = [...pods.logs].map(([pod, l]) => `--- ${pod}\n${l.join('').slice(-2000)}`).join('\n');
    const opLogs = operators.map((o, i) => `--- operator ${i + 1}\n${o.log.join('').slice(-3000)}`).join('\n');
    const writes = api.requests.filter((r) => r.method !== 'GET' && !r.path.endsWith('/leases/kvctl') && !r.path.includes('/events')).map((r) => `${r.method} ${r.path} ${r.status} ${r.method === 'PATCH' && r.path.includes('statefulsets') ? JSON.stringify((r.body as { spec?: unknown })?.spec).slice(0, 300) : ''}`);
    throw new Error(`${(e as Error).message}\nstatus: ${JSON.stringify(status())}\n${report.join('\n')}\n${pods.crashes.join('\n')}\npods deleted: ${pods.deleted.join(' ')}\nrequests:\n${writes.slice(-60).join('\n')}\n${opLogs}\n${logs}`, { cause: e });
  } finally {
    await workload.stop();
    for (const o of operators) await o.kill();
    stopProbes();
    clearInterval(progress);
    await pods.stopAll();
    await api.stop();
  }
});
