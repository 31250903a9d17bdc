// The real image running as the manifests say: the Containerfile built with podman, every pod of the
// rendered `dev` overlay run as a container with the pod's args, environment, volumes and DNS name
// (test/support/pods.ts), probes run as the kubelet runs them. On that cluster: it forms and serves
// through every door; a rolling upgrade to a second image under a recorded workload loses nothing
// and fails no request; the chaos overlay's faults (kill, partition, pause) keep the history
// linearizable; a group's container logs hold that group's lines (and trace lines with `tracing`).
//
// Needs root and podman (with runc, debootstrap for the base image): skipped where they are
// missing, required in CI (KVS_K8S_REQUIRE=1, set by .ci/run). Prints the figures docs/kubernetes.md
// quotes (lines starting "k8s-e2e:").
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { KvsClient } from '../../src/client/client.ts';
import { KV_PROTO_PATH } from '../../src/doors/grpc-door.ts';
import { checkHistory } from '../lin/check.ts';
import { RespClient, plain } from '../doors/resp-client.ts';
import { NativeWs } from '../doors/ws-client.ts';
import { PodHarness, podman, podmanSkipReason } from '../support/pods.ts';
import { podsOf, renderKustomize, type PodSpec } from '../support/pod-specs.ts';
import { waitFor } from '../support/wait.ts';
import { buildImage, imageBytes, imageId } from './image.ts';
import { RecordedWorkload } from './recorded-workload.ts';

const KUSTOMIZE = new URL('../../kustomize/', import.meta.url).pathname;
const IMAGE_1 = 'localhost/sharded-kvs:e2e-1';
const IMAGE_2 = 'localhost/sharded-kvs:e2e-2';
const GROUPS = ['placement', 'shard-0', 'shard-1', 'shard-2'];
const enc = new TextEncoder();
const dec = new TextDecoder();

const skip = await podmanSkipReason();
if (skip && process.env.KVS_K8S_REQUIRE === '1') throw new Error(`KVS_K8S_REQUIRE=1 but containers cannot run here: ${skip}`);

function report(what: string, figures: unknown): void {
  console.log(`k8s-e2e: ${what}: ${JSON.stringify(figures)}`);
}

/**
 * The group and replica a server log line names: a JSON line's `group` and `replica` fields, or a
 * text line's "replica 101 (group 1)" / "replica 101: ..." (the format before structured logs).
 */
function lineOwner(line: string): { group?: number; replica?: number } {
  if (line.startsWith('{')) {
    try {
      const j = JSON.parse(line) as { group?: unknown; replica?: unknown };
      return { ...(typeof j.group === 'number' ? { group: j.group } : {}), ...(typeof j.replica === 'number' ? { replica: j.replica } : {}) };
    } catch {
      return {};
    }
  }
  const r = /\breplica (\d+)/.exec(line);
  const g = /\(group (\d+)\)/.exec(line);
  return { ...(r ? { replica: Number(r[1]) } : {}), ...(g ? { group: Number(g[1]) } : {}) };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

describe('the image running the rendered dev overlay as podman containers', { skip, timeout: 1_500_000 }, () => {
  const specs: PodSpec[] = podsOf(renderKustomize(join(KUSTOMIZE, 'overlays/dev')));
  // The tracing overlay's pods, moved from its namespace of its own (kvs-tracing) into this cluster's
  // (kvs): one pod of the running store restarts traced, its peers' DNS names unchanged.
  const devNamespace = specs[0]!.namespace;
  const tracingSpecs = new Map(podsOf(renderKustomize(join(KUSTOMIZE, 'overlays/tracing')).map((o) => ({ ...o, metadata: { ...o.metadata, namespace: devNamespace } }))).map((p) => [p.name, p]));
  let h: PodHarness;
  let client: KvsClient;
  const nativeEndpoints = (): string[] => specs.map((s) => h.address(s.name, 'native'));
  const groupPods = (g: string): string[] => specs.filter((s) => s.set === g).map((s) => s.name);

  before(async () => {
    const seconds = await buildImage(IMAGE_1, 'e2e-1');
    await buildImage(IMAGE_2, 'e2e-2'); // same layers, another version label: a second image to roll to
    report('image', { tag: IMAGE_1, bytes: await imageBytes(IMAGE_1), buildSeconds: Math.round(seconds) });
    assert.notEqual(await imageId(IMAGE_1), await imageId(IMAGE_2), 'the upgrade goes to another image');
    h = await PodHarness.create(specs, { prefix: `kvs-e2e-${process.pid}`, workDir: mkdtempSync('/var/tmp/kvs-e2e-'), image: IMAGE_1 });
  });

  after(async () => {
    client?.close();
    await h?.destroy();
  });

  it('carries the group template the kvctl operator instantiates (one source with kustomize/)', async () => {
    const script = "const t = (await import('/app/dist/operator/group-template.js')).loadGroupTemplate(); console.log(t.resources.map((r) => r.kind).sort().join(','), t.tracing.length > 0)";
    const out = await podman(['run', '--rm', '--network', 'none', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', '--entrypoint', 'node', IMAGE_1, '--input-type=module', '-e', script]);
    assert.equal(out.trim(), 'PodDisruptionBudget,Service,StatefulSet true');
  });

  it('forms from the rendered pods and serves through every door, keys spread over every group', async () => {
    const t0 = performance.now();
    await Promise.all(specs.map((s) => h.start(s.name)));
    await Promise.all(specs.map((s) => h.waitReady(s.name)));
    client = new KvsClient({ endpoints: nativeEndpoints(), timeoutMs: 30_000 });
    await client.put('k8s:first', 'written');
    assert.equal(dec.decode((await client.get('k8s:first'))!), 'written');
    report('podman run to serving', { pods: specs.length, seconds: Math.round((performance.now() - t0) / 100) / 10 });

    // Each door on a different pod (any replica serves any key); each reads what the previous wrote.
    const [, resp, http, grpcPod, ws] = ['placement-0', 'shard-0-1', 'shard-1-2', 'shard-2-0', 'placement-2'];
    await client.put('door:native', 'n');
    const rc = await RespClient.connect(h.spec(resp!).ports.resp!, h.ip(resp!));
    try {
      assert.equal(plain(await rc.call('GET', 'door:native')), 'n');
      assert.equal(plain(await rc.call('SET', 'door:resp', 'r')), 'OK');
    } finally {
      rc.close();
    }
    const base = `http://${h.address(http!, 'http')}/v1/kv/`;
    assert.equal(await (await fetch(`${base}door%3Aresp`)).text(), 'r');
    assert.equal((await fetch(`${base}door%3Ahttp`, { method: 'PUT', body: 'h' })).status < 300, true);
    const def = protoLoader.loadSync(KV_PROTO_PATH, { keepCase: true, defaults: true, oneofs: true });
    type Unary = (req: object, cb: (e: grpc.ServiceError | null, r?: { value?: unknown }) => void) => void;
    const g = grpc.loadPackageDefinition(def) as unknown as { protos: { KV: new (a: string, c: grpc.ChannelCredentials) => grpc.Client & { Get: Unary; Put: Unary } } };
    const gc = new g.protos.KV(h.address(grpcPod!, 'grpc'), grpc.credentials.createInsecure());
    try {
      const call = (m: Unary, req: object): Promise<{ value?: unknown }> => new Promise((res, rej) => m.call(gc, req, (e, r) => (e ? rej(e) : res(r!))));
      assert.equal(String((await call(gc.Get, { key: 'door:http' })).value), 'h');
      await call(gc.Put, { key: 'door:grpc', value: 'g' });
    } finally {
      gc.close();
    }
    const wsc = await NativeWs.connect(h.spec(ws!).ports.http!, h.ip(ws!));
    try {
      const r = await wsc.one({ op: 'get', key: enc.encode('door:grpc'), consistency: 'linearizable' });
      assert.equal(r.kind, 'value');
      assert.equal(dec.decode((r as { value: Uint8Array }).value), 'g');
    } finally {
      wsc.close();
    }

    // Keys spread: every shard group holds some of 200 keys (kvs_keys on its replicas' /metrics).
    for (let i = 0; i < 200; i++) await client.put(`spread:${i}`, String(i));
    const keysOf = async (pod: string): Promise<number> => {
      const text = await (await fetch(`http://${h.address(pod, 'http')}/metrics`)).text();
      return Number(/^kvs_keys (\d+)/m.exec(text)?.[1] ?? 0);
    };
    const perGroup: Record<string, number> = {};
    for (const grp of GROUPS.slice(1)) perGroup[grp] = Math.max(...(await Promise.all(groupPods(grp).map(keysOf))));
    report('keys per shard group after 200 puts', perGroup);
    for (const grp of GROUPS.slice(1)) assert.ok(perGroup[grp]! > 20, `${grp} holds ${perGroup[grp]} keys`);
  });

  it('rolls every group to a second image (StatefulSet order, PDB respected) with no failed request and a linearizable history', async () => {
    const clients = [0, 1, 2].map(() => new KvsClient({ endpoints: nativeEndpoints(), timeoutMs: 30_000 }));
    const w = new RecordedWorkload(clients, ['u1', 'u2', 'u3'], 12, 'upgrade');
    w.start();
    const stops: { pod: string; exitCode: number; seconds: number; exitSeconds: number; handedOver: boolean }[] = [];
    try {
      await w.progress(100);
      // Every StatefulSet rolls on its own (in parallel, as their controllers do): highest ordinal
      // first, the next pod only once the previous one is Ready; never a second pod of a group down.
      await Promise.all(
        GROUPS.map(async (grp) => {
          for (const pod of groupPods(grp).reverse()) {
            for (const other of groupPods(grp).filter((p) => p !== pod)) await waitFor(`${other} ready before ${pod} goes (PDB)`, () => h.ready(other), 120_000, 500);
            const stopped = await h.stop(pod);
            stops.push({ pod, exitCode: stopped.exitCode, seconds: stopped.seconds, exitSeconds: stopped.exitSeconds, handedOver: /handed leadership/.test(stopped.logs) });
            await h.start(pod, IMAGE_2);
            await h.waitReady(pod);
          }
        }),
      );
      await w.progress(100);
    } finally {
      await w.stop();
      for (const c of clients) c.close();
    }
    const f = w.figures();
    const transfers = stops.filter((s) => s.handedOver).length;
    report('rolling upgrade', { ...f, leaderTransfers: transfers, longestStopSeconds: Math.max(...stops.map((s) => Math.round(s.seconds * 10) / 10)), longestSigtermToExitSeconds: Math.max(...stops.map((s) => Math.round(s.exitSeconds * 10) / 10)) });
    for (const s of stops) {
      assert.equal(s.exitCode, 0, `${s.pod} exited ${s.exitCode} on SIGTERM`);
      assert.ok(s.exitSeconds < h.spec(s.pod).terminationGracePeriodSeconds, `${s.pod} took ${s.exitSeconds} s to exit after SIGTERM`);
    }
    for (const s of specs) assert.equal(h.imageOf(s.name), IMAGE_2);
    assert.equal(f.failures, 0, `failed requests: ${f.failureMessages.join('; ')}`);
    assert.ok(transfers >= 1, 'some stopped pod was a leader and handed leadership over');
    const verdict = checkHistory(w.history);
    assert.notEqual(verdict.verdict, 'illegal', verdict.text);
    for (const [key, value] of w.acked) assert.equal(dec.decode((await client.get(key))!), value, `acknowledged ${key} lost`);
  });

  it('carries out the chaos overlay: pod kill, a replica partitioned from its group, a paused leader; the history stays linearizable', async () => {
    const clients = [0, 1, 2].map(() => new KvsClient({ endpoints: nativeEndpoints(), timeoutMs: 30_000 }));
    const w = new RecordedWorkload(clients, ['x1', 'x2', 'x3'], 34, 'chaos');
    w.start();
    const outcomes: Record<string, unknown> = {};
    const leaderOf = async (grp: string): Promise<string> =>
      waitFor(`a leader in ${grp}`, async () => {
        for (const pod of groupPods(grp)) {
          const st = (await fetch(`http://${h.address(pod, 'http')}/v1/status`).then((r) => r.json()).catch(() => undefined)) as { role?: string } | undefined;
          if (st?.role === 'leader') return pod;
        }
        return undefined;
      }, 60_000, 200);
    const during = async (name: string, fault: () => Promise<void>, heal: () => Promise<void>): Promise<void> => {
      await w.progress(50);
      w.resetFigures();
      await fault();
      await w.progress(50); // the workload goes on while the fault lasts
      await heal();
      await w.progress(50);
      outcomes[name] = w.figures();
    };
    try {
      // PodChaos pod-kill on shard-0 (its leader, the hardest case): SIGKILL, recreated with its volume.
      const killed = await leaderOf('shard-0');
      await during(`pod-kill ${killed}`, () => h.kill(killed), async () => {
        await h.start(killed);
        await h.waitReady(killed);
      });
      // NetworkChaos partition: one shard-1 replica (its leader) cut off from its group.
      const cut = await leaderOf('shard-1');
      await during(`partition ${cut}`, () => h.disconnect(cut), async () => {
        await sleep(3000);
        await h.connect(cut);
        await h.waitReady(cut);
      });
      // A paused process (as a long GC or a frozen VM): shard-2's leader stops answering, then resumes.
      const paused = await leaderOf('shard-2');
      await during(`pause ${paused}`, () => h.pause(paused), async () => {
        await sleep(3000);
        await h.unpause(paused);
        await h.waitReady(paused);
      });
    } finally {
      await w.stop();
      for (const c of clients) c.close();
    }
    report('chaos', outcomes);
    const verdict = checkHistory(w.history);
    assert.notEqual(verdict.verdict, 'illegal', verdict.text);
    for (const [key, value] of w.acked) assert.equal(dec.decode((await client.get(key))!), value, `acknowledged ${key} lost`);
  });

  it("holds group shard-0's lines in its pods' logs (what stern -l group=shard-0 shows), trace lines with tracing", async () => {
    for (const pod of groupPods('shard-0')) {
      const id = 100 + h.spec(pod).ordinal + 1;
      const owners = (await h.logs(pod)).split('\n').filter((l) => l.trim() !== '').map((l) => ({ line: l, ...lineOwner(l) }));
      assert.ok(owners.some((o) => o.replica === id && o.group === 1), `${pod}: lines naming replica ${id} of group 1`);
      assert.ok(owners.some((o) => o.replica === id && /leader|follower/.test(o.line)), `${pod}: its role lines`);
      for (const o of owners) {
        assert.ok(o.replica === undefined || [101, 102, 103].includes(o.replica), `${pod}: a line of another group's replica: ${o.line}`);
        assert.ok(o.group === undefined || o.group === 1, `${pod}: a line of another group: ${o.line}`);
      }
    }
    // Apply the tracing overlay to shard-0-0: its pod restarts with --trace and the tracer's capabilities.
    const pod = 'shard-0-0';
    await h.stop(pod);
    h.respec(pod, tracingSpecs.get(pod)!);
    await h.start(pod);
    await h.waitReady(pod);
    await client.put('traced', 'yes');
    const lines = await waitFor('trace lines in shard-0-0\'s log', async () => {
      const l = (await h.logs(pod)).split('\n');
      return l.filter((x) => /AppendEntries|Heartbeat|MsgApp|append/i.test(x)).length > 5 ? l : undefined;
    }, 60_000, 500);
    // The tracer's own line (eBPF, or why it fell back to the tap): a JSON log line or a text one.
    const sourceLine = lines.find((l) => l.startsWith('trace:') || /"msg":"trace: /.test(l));
    report('tracing', { source: sourceLine ?? 'none', traceLines: lines.length });
    assert.ok(sourceLine !== undefined, 'the tracer says which source it uses');
  });
});
