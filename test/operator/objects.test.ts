// A group's objects (src/operator/objects.ts), and the replica start script they carry, run with sh
// and a stand-in `kvs` that prints its arguments: which pods bootstrap, which join, which recover.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { groupObjects } from '../../src/operator/objects.ts';
import { parseSpec } from '../../src/operator/spec.ts';

const owner = { name: 'kv', namespace: 'prod', uid: 'u-1' };
const spec = parseSpec({ shards: 2, replicas: 3, image: 'kvs:1', storage: { retention: 'Delete' }, doors: { resp: true } });

type Sts = { kind: string; metadata: { annotations: Record<string, string> }; spec: { replicas: number; updateStrategy: { type: string }; persistentVolumeClaimRetentionPolicy: Record<string, string>; template: { spec: { containers: { command: string[]; env: { name: string; value?: string }[] }[] } } } };

function run(group: number, joinFrom: number, pod: string, hasData: boolean): string {
  const sts = groupObjects(owner, spec, { group, replicas: 3, revision: 'r1', joinFrom }).find((o) => o.kind === 'StatefulSet') as unknown as Sts;
  const c = sts.spec.template.spec.containers[0]!;
  const dir = mkdtempSync(join(tmpdir(), 'kvs-script-'));
  const data = join(dir, 'data');
  mkdirSync(data);
  if (hasData) writeFileSync(join(data, 'data.mdb'), 'x');
  writeFileSync(join(dir, 'kvs'), '#!/bin/sh\necho "$@"\n');
  chmodSync(join(dir, 'kvs'), 0o755);
  const env = { PATH: `${dir}:/usr/bin:/bin`, POD_NAME: pod, KVS_DATA: data, KVS_JOIN_FROM: c.env.find((e) => e.name === 'KVS_JOIN_FROM')!.value! };
  return execFileSync(c.command[0]!, c.command.slice(1), { env, encoding: 'utf8' }).trim().replaceAll(data, 'DATA');
}

test('objects: OnDelete updates, retention from the spec, revision and bootstrap marker', () => {
  const objs = groupObjects(owner, spec, { group: 1, replicas: 3, revision: 'r1', joinFrom: 3 });
  assert.deepEqual(
    objs.map((o) => `${o.kind}/${o.metadata.name}`),
    ['Service/kv-shard-1', 'PodDisruptionBudget/kv-shard-1', 'StatefulSet/kv-shard-1'],
  );
  const sts = objs[2] as unknown as Sts;
  assert.equal(sts.spec.updateStrategy.type, 'OnDelete');
  assert.deepEqual(sts.spec.persistentVolumeClaimRetentionPolicy, { whenScaled: 'Delete', whenDeleted: 'Delete' });
  assert.deepEqual(sts.metadata.annotations, { 'kvs.sharded-kvs.dev/revision': 'r1', 'kvs.sharded-kvs.dev/join-from': '3' });
});

test('start script: bootstrap members list the group; later pods join when empty, recover when not', () => {
  const svc = (g: string, o: number) => `kv-${g}-${o}.kv-${g}.prod.svc:7000`;
  const placement = `--placement ${[0, 1, 2].map((o) => svc('placement', o)).join(',')}`;
  const boot = [0, 1, 2].map((o) => `${101 + o}=${svc('shard-1', o)}`).join(',');
  assert.equal(run(1, 3, 'kv-shard-1-1', false), `server --id 102 --group 1 --listen ${svc('shard-1', 1)} --data DATA ${placement} --replicas ${boot} --resp 0.0.0.0:6379 --http 0.0.0.0:8080`);
  assert.equal(run(1, 0, 'kv-shard-1-3', false), `server --id 104 --group 1 --listen ${svc('shard-1', 3)} --data DATA ${placement} --replicas 104=${svc('shard-1', 3)} --join --resp 0.0.0.0:6379 --http 0.0.0.0:8080`);
  assert.equal(run(1, 0, 'kv-shard-1-0', true), `server --id 101 --group 1 --listen ${svc('shard-1', 0)} --data DATA ${placement} --replicas 101=${svc('shard-1', 0)} --resp 0.0.0.0:6379 --http 0.0.0.0:8080`);
  assert.match(run(0, 3, 'kv-placement-2', true), /^server --id 3 --group 0 --listen \S+ --data DATA --replicas 1=\S+,2=\S+,3=\S+ --resp/);
});
