// `kvs operator` and `kvs kvstore status` as processes, against the fake API server through a
// kubeconfig file; and the status printer itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { FakeApiServer } from './fake-apiserver.ts';
import { formatKVStore } from '../../src/operator/format.ts';
import type { KVStore } from '../../src/operator/spec.ts';
import { reapOnExit } from '../support/processes.ts';
import { waitFor } from '../support/wait.ts';

const KVS = new URL('../../bin/kvs.js', import.meta.url).pathname;
const NS = 'kvs';

const sample: KVStore = {
  apiVersion: 'kvs.sharded-kvs.dev/v1alpha1',
  kind: 'KVStore',
  metadata: { name: 'demo', namespace: NS, generation: 4 },
  spec: { shards: 4, replicas: 3, image: 'kvs:2' },
  status: {
    observedGeneration: 4,
    phase: 'Resharding',
    epoch: 7,
    partitionsMoving: 120,
    currentStep: 'moving 120 partitions (epoch 7)',
    groups: [
      { name: 'demo-placement', id: 0, role: 'placement', replicas: 3, readyReplicas: 3, voters: [1, 2, 3], leader: 'demo-placement-1', image: 'kvs:2' },
      { name: 'demo-shard-4', id: 4, role: 'shard', replicas: 3, readyReplicas: 2, voters: [401, 402, 403], leader: 'demo-shard-4-0', partitions: 256, image: 'kvs:2' },
    ],
    conditions: [
      { type: 'Ready', status: 'False', reason: 'Resharding', message: 'moving 120 partitions (epoch 7)', lastTransitionTime: '2026-01-01T00:00:00Z' },
      { type: 'Degraded', status: 'True', reason: 'StepStuck', message: 'shard group 4 has no leader', lastTransitionTime: '2026-01-01T00:00:00Z' },
    ],
    membershipInFlight: [{ kind: 'add-member', group: 4, replicaId: 404, address: 'x:7000' }],
    lastError: 'add replica 404: timed out',
  },
};

test('the status printer: phase and step, groups table, conditions with reasons and age, work in flight', () => {
  const text = formatKVStore(sample, new Date('2026-01-01T00:05:00Z'));
  assert.match(text, /^kvstore demo \(namespace kvs\): Resharding — moving 120 partitions \(epoch 7\)$/m);
  assert.match(text, /spec: 4 shards × 3 replicas, image kvs:2, 1024 partitions/);
  assert.match(text, /partitions moving: 120/);
  assert.match(text, /^ {2}GROUP +ROLE +REPLICAS +READY +VOTERS +LEADER +PARTITIONS +IMAGE$/m);
  assert.match(text, /^ {2}demo-shard-4 +shard +3 +2 +401,402,403 +demo-shard-4-0 +256 +kvs:2$/m);
  assert.match(text, /^ {4}Degraded +True +StepStuck +5m +shard group 4 has no leader$/m);
  assert.match(text, /in flight: add replica 404 of shard group 4/);
  assert.match(text, /last error \(retried with back-off\): add replica 404: timed out/);
  assert.match(formatKVStore({ ...sample, metadata: { ...sample.metadata, generation: 5 } }, new Date()), /has not seen the latest change yet/);
});

async function withApi(fn: (api: FakeApiServer, kubeconfig: string) => Promise<void>): Promise<void> {
  const api = new FakeApiServer();
  const url = await api.start();
  const dir = mkdtempSync(join(tmpdir(), 'kvs-operator-cli-'));
  const kubeconfig = join(dir, 'config');
  writeFileSync(kubeconfig, stringify({ apiVersion: 'v1', kind: 'Config', clusters: [{ name: 'fake', cluster: { server: url, 'insecure-skip-tls-verify': true } }], users: [{ name: 'op', user: {} }], contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'op', namespace: NS } }], 'current-context': 'fake' }));
  try {
    await fn(api, kubeconfig);
  } finally {
    await api.stop();
  }
}

test('kvs kvstore status prints the resource; a missing one exits 1', async () => {
  await withApi(async (api, kubeconfig) => {
    api.put('kvstores', NS, sample as never);
    const run = promisify(execFile);
    const { stdout } = await run(process.execPath, [KVS, 'kvstore', 'status', 'demo', '--kubeconfig', kubeconfig], { timeout: 60_000 });
    assert.match(stdout, /kvstore demo \(namespace kvs\): Resharding/);
    assert.match(stdout, /demo-shard-4/);
    await assert.rejects(run(process.execPath, [KVS, 'kvstore', 'status', 'nope', '--kubeconfig', kubeconfig], { timeout: 60_000 }), (e: { code: number; stderr: string }) => e.code === 1 && /no KVStore "nope"/.test(e.stderr));
  });
});

test('kvs operator runs against the API server, acts, and lets the lease go on SIGTERM', async () => {
  await withApi(async (api, kubeconfig) => {
    api.put('kvstores', NS, { apiVersion: 'kvs.sharded-kvs.dev/v1alpha1', kind: 'KVStore', metadata: { name: 'demo' }, spec: { shards: 1, image: 'kvs:1' } });
    const child = reapOnExit(spawn(process.execPath, [KVS, 'operator', '--kubeconfig', kubeconfig, '--http-port', '0', '--identity', 'cli-op'], { stdio: ['ignore', 'ignore', 'pipe'] }));
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    try {
      await waitFor('the placement group applied', () => api.get('statefulsets', NS, 'demo-placement'), 60_000);
      const status = await waitFor('a status', () => api.get('kvstores', NS, 'demo')!.status as { phase?: string } | undefined, 60_000);
      assert.equal(status.phase, 'Creating');
      // Its log is JSON lines (stderr is a pipe), like a replica's.
      const line = JSON.parse(stderr.split('\n').find((l) => l.includes('cli-op leads'))!) as Record<string, unknown>;
      assert.deepEqual([line.level, line.component, line.identity, line.msg, line.lease], ['info', 'kvctl', 'cli-op', 'cli-op leads', 'kvctl']);
      assert.equal(typeof line.ts, 'string');
    } finally {
      child.kill('SIGTERM');
    }
    const code = await new Promise((r) => child.once('exit', r));
    assert.equal(code, 0, stderr);
    assert.equal((api.get('leases', NS, 'kvctl')!.spec as { holderIdentity?: string }).holderIdentity, undefined);
  });
});
