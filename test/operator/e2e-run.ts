// NOT part of `make test` yet (run by hand, see docs/operator.md): it is heavy (up to 18 replica
// processes) and has not yet passed reliably on a loaded machine.
//   KVS_E2E_PROGRESS=/tmp/progress unshare -n bash -c 'ip link set lo up; \
//     node --import tsx --test --test-reporter=spec --test-force-exit test/operator/e2e-run.ts'
// End to end on real replicas: the operator (real store access) against the fake API server, whose
// StatefulSets a shim runs as `kvs server` processes on loopback (the pod's start logic: bootstrap
// members list the group, later pods join when their volume is empty), with a readiness prober on
// /readyz. A recorded workload runs throughout and is checked for linearizability; every
// acknowledged write must be readable at the end. Changes: shards 2 → 3, replicas 3 → 5 with the
// operator killed and restarted in the middle, 5 → 3, shards 3 → 2 with the operator killed in the
// middle. Prints each change's duration, the longest pause a client saw, and failed requests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { KvsClient } from '../../src/client/client.ts';
import { Operator } from '../../src/operator/controller.ts';
import { ANNOTATION_JOIN_FROM, LABEL_GROUP_ID } from '../../src/operator/objects.ts';
import { replicaIdOf, PLACEMENT_GROUP } from '../../src/operator/reconcile.ts';
import type { KVStoreStatus } from '../../src/operator/spec.ts';
import { checkHistory } from '../lin/check.ts';
import type { Operation } from '../lin/history.ts';
import { reapOnExit } from '../support/processes.ts';
import { waitFor } from '../support/wait.ts';
import { FakeApiServer } from './fake-apiserver.ts';
import { StatefulSetShim } from './kubelet.ts';

const BIN = resolve(import.meta.dirname, '../../bin/kvs.js');
const NS = 'kvs';
const BASE = 31500; // native 31500–31559, HTTP +2000 (no other test uses these)
const PLACEMENT_REPLICAS = 3;

type Obj = Parameters<FakeApiServer['put']>[2];

const portOf = (group: number, ordinal: number): number => BASE + (group === PLACEMENT_GROUP ? 0 : group * 10) + ordinal;
const addr = (group: number, ordinal: number): string => `127.0.0.1:${portOf(group, ordinal)}`;
const httpOf = (group: number, ordinal: number): number => portOf(group, ordinal) + 2000;

class Pods {
  readonly dir = mkdtempSync(join(tmpdir(), 'kvs-operator-e2e-'));
  readonly procs = new Map<string, { child: ChildProcess; exited: Promise<void>; group: number; ordinal: number; log: string[]; stopping: boolean }>();

  started(pod: Obj, sts: Obj): string {
    const group = Number(sts.metadata.labels![LABEL_GROUP_ID]);
    const ordinal = Number(pod.metadata.name.slice(sts.metadata.name.length + 1));
    const joinFrom = Number((sts.metadata.annotations as Record<string, string>)[ANNOTATION_JOIN_FROM]);
    const name = pod.metadata.name;
    const previous = this.procs.get(name)?.exited ?? Promise.resolve();
    // A restarted pod's process starts once the old one has exited (same port, same volume).
    void previous.then(() => this.spawn(name, group, ordinal, joinFrom));
    return addr(group, ordinal);
  }

  private spawn(name: string, group: number, ordinal: number, joinFrom: number): void {
    const data = join(this.dir, name);
    const id = replicaIdOf(group, ordinal);
    const boot = Array.from({ length: joinFrom }, (_, o) => `${replicaIdOf(group, o)}=${addr(group, o)}`).join(',');
    const args = [BIN, 'server', '--id', String(id), '--group', String(group), '--listen', addr(group, ordinal), '--data', data, '--http', `127.0.0.1:${httpOf(group, ordinal)}`];
    if (group !== PLACEMENT_GROUP) args.push('--placement', Array.from({ length: PLACEMENT_REPLICAS }, (_, o) => addr(PLACEMENT_GROUP, o)).join(','));
    if (ordinal < joinFrom) args.push('--replicas', boot);
    else {
      args.push('--replicas', `${id}=${addr(group, ordinal)}`);
      if (!existsSync(data) || readdirSync(data).length === 0) args.push('--join');
    }
    const child = reapOnExit(spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] }));
    const log: string[] = [];
    child.stderr!.on('data', (b: Buffer) => log.push(b.toString()));
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const entry = { child, exited, group, ordinal, log, stopping: false };
    this.procs.set(name, entry);
    // The kubelet restarts a container that exits on its own (restartPolicy Always).
    void exited.then(() => {
      if (!entry.stopping && !this.closed && this.procs.get(name) === entry) setTimeout(() => this.procs.get(name) === entry && !this.closed && this.spawn(name, group, ordinal, joinFrom), 1000);
    });
  }

  private closed = false;

  stopped(pod: Obj): void {
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
        const ok = p.child.exitCode === null && (await fetch(`http://127.0.0.1:${httpOf(p.group, p.ordinal)}/readyz`, { signal: AbortSignal.timeout(1500) }).then((r) => r.ok, () => false));
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

  start(endpoints: string[], clients = 3): void {
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

test('end to end: live shards and replicas, operator restarts, under a checked workload', { timeout: 1_500_000 }, async () => {
  const api = new FakeApiServer();
  const url = await api.start();
  const pods = new Pods();
  const shim = new StatefulSetShim(api, NS, { started: (p, s) => pods.started(p, s), stopped: (p) => pods.stopped(p), volumeDeleted: (c) => pods.volumeDeleted(c) });
  const stopProbes = prober(api, shim, pods);
  const kc = new KubeConfig();
  kc.loadFromOptions({ clusters: [{ name: 'fake', server: url, skipTLSVerify: true }], users: [{ name: 'op' }], contexts: [{ name: 'fake', cluster: 'fake', user: 'op' }], currentContext: 'fake' });
  const operators: Operator[] = [];
  const startOperator = async (identity: string): Promise<Operator> => {
    const op = new Operator(kc, { namespace: NS, identity, leaseDurationS: 3, leaseRenewMs: 300, resyncMs: 300, membershipTimeoutMs: 60_000, log: () => undefined });
    operators.push(op);
    await op.start();
    return op;
  };
  const status = (): KVStoreStatus => (api.get('kvstores', NS, 'demo')!.status ?? {}) as KVStoreStatus;
  const setSpec = (change: Record<string, unknown>): void => {
    const kv = api.get('kvstores', NS, 'demo')!;
    api.put('kvstores', NS, { ...kv, spec: { ...(kv.spec as object), ...change } });
  };
  const ready = () => waitFor('the store Ready at the latest generation', () => status().phase === 'Ready' && status().observedGeneration === api.get('kvstores', NS, 'demo')!.metadata.generation, 600_000, 200);
  // KVS_E2E_PROGRESS=FILE: the status, once a second, for following a run.
  const progressFile = process.env.KVS_E2E_PROGRESS;
  const progress = progressFile
    ? setInterval(() => {
        const st = status();
        appendFileSync(progressFile, `${new Date().toISOString()} ${st.phase} | ${st.currentStep} | ${st.lastError ?? ''} | ${st.conditions?.find((c) => c.type === 'Degraded')?.message ?? ''} | pods ${api.list('pods', NS).map((p) => `${p.metadata.name}:${(p.status as { conditions?: { status: string }[] })?.conditions?.[0]?.status}`).join(' ')}\n`);
      }, 1000)
    : undefined;
  const workload = new Workload();
  const report: string[] = [];
  const step = async (name: string, change: Record<string, unknown>, midway?: () => Promise<void>): Promise<void> => {
    const failedBefore = workload.failed;
    workload.window();
    const t0 = performance.now();
    setSpec(change);
    if (midway) await midway();
    await ready();
    report.push(`${name}: ${((performance.now() - t0) / 1000).toFixed(1)} s, longest client pause ${workload.longestPauseMs.toFixed(0)} ms, failed requests ${workload.failed - failedBefore}`);
    console.log(report.at(-1));
  };
  try {
    api.put('kvstores', NS, { apiVersion: 'kvs.sharded-kvs.dev/v1alpha1', kind: 'KVStore', metadata: { name: 'demo' }, spec: { shards: 2, replicas: 3, placementReplicas: PLACEMENT_REPLICAS, partitions: 64, image: 'kvs:1' } });
    let op = await startOperator('op-1');
    await ready();
    const endpoints = [0, 1, 2, 3, 4, 5].flatMap((g) => [0, 1, 2, 3, 4].map((o) => addr(g, o)));
    workload.start(endpoints);
    await step('shards 2 → 3', { shards: 3 });
    await step('replicas 3 → 5 (operator killed mid-change)', { replicas: 5 }, async () => {
      await waitFor('a membership change in flight', () => (status().membershipInFlight?.length ?? 0) > 0, 600_000, 100);
      await op.stop();
      op = await startOperator('op-2');
    });
    await step('replicas 5 → 3', { replicas: 3 });
    // Not yet here: the image upgrade (docs/operator.md, "Not yet proven"): in a first run the
    // restarted replicas of a shard group, started with their data and only themselves in
    // --replicas, formed no peer links and the group lost its leader.
    await step('shards 3 → 2 (operator killed mid-reshard)', { shards: 2 }, async () => {
      await waitFor('the reshard under way', () => status().phase === 'Resharding', 600_000, 100);
      await op.stop();
      op = await startOperator('op-3');
    });
    await workload.stop();
    console.log(report.join('\n'));
    const st = status();
    assert.deepEqual(
      st.groups!.map((g) => [g.name, g.replicas, g.readyReplicas, g.image]),
      [
        ['demo-placement', 3, 3, 'kvs:1'],
        ['demo-shard-1', 3, 3, 'kvs:1'],
        ['demo-shard-2', 3, 3, 'kvs:1'],
      ],
    );
    const check = checkHistory(workload.history.filter((o) => o.ret !== undefined || o.op !== 'get'));
    assert.equal(check.verdict, 'ok', check.text);
    const client = new KvsClient({ endpoints, timeoutMs: 30_000 });
    try {
      for (const [k, v] of workload.acked) {
        const got = await client.get(k);
        assert.equal(got === null ? null : new TextDecoder().decode(got), v, `acknowledged write ${k} lost`);
      }
    } finally {
      client.close();
    }
    assert.equal(workload.failed, 0, `failed requests:\n${report.join('\n')}`);
  } finally {
    await workload.stop();
    for (const op of operators) await op.stop();
    stopProbes();
    clearInterval(progress);
    await pods.stopAll();
    await api.stop();
  }
});
