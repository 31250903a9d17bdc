// Replica identity from the StatefulSet pod name (src/server/pod-identity.ts) and its wiring into
// the server configuration.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/server/config.ts';
import { bootstrapGroups, groupOfSet, parsePodName, podDefaults } from '../../src/server/pod-identity.ts';

const SUFFIX = 'kvs.svc.cluster.local';

test('set names map to Raft groups: placement is 0, shard-N is N+1', () => {
  assert.equal(groupOfSet('placement'), 0);
  assert.equal(groupOfSet('shard-0'), 1);
  assert.equal(groupOfSet('shard-11'), 12);
  assert.throws(() => groupOfSet('db'), ConfigError);
  assert.throws(() => groupOfSet('shard-x'), ConfigError);
});

test('a pod name splits at its last dash into set and ordinal', () => {
  assert.deepEqual(parsePodName('shard-1-2'), { set: 'shard-1', ordinal: 2 });
  assert.deepEqual(parsePodName('placement-0'), { set: 'placement', ordinal: 0 });
  assert.throws(() => parsePodName('placement'), ConfigError);
});

test('a shard pod gets its id, its group, its peers by stable DNS name and the placement group', () => {
  const d = podDefaults({ podName: 'shard-1-2', dnsSuffix: SUFFIX, groupSize: 3, listen: '0.0.0.0:7000', placementSet: 'placement' });
  assert.equal(d.group, 2);
  assert.equal(d.id, 203);
  assert.deepEqual(d.replicas, [201, 202, 203].map((id, m) => ({ id, address: `shard-1-${m}.shard-1.${SUFFIX}:7000` })));
  assert.deepEqual(d.placement, [0, 1, 2].map((m) => `placement-${m}.placement.${SUFFIX}:7000`));
});

test('a placement pod numbers its replicas from 1 and refuses a placement set of its own', () => {
  const d = podDefaults({ podName: 'placement-0', dnsSuffix: SUFFIX, groupSize: 3, listen: '0.0.0.0:7000' });
  assert.equal(d.id, 1);
  assert.equal(d.group, 0);
  assert.equal(d.placement, undefined);
  assert.throws(() => podDefaults({ podName: 'placement-0', dnsSuffix: SUFFIX, groupSize: 3, listen: '0.0.0.0:7000', placementSet: 'placement' }), ConfigError);
});

test('a pod past the founders lists only itself: it joins with an empty volume, recovers with data', () => {
  const self = [{ id: 104, address: `shard-0-3.shard-0.${SUFFIX}:7000` }];
  const empty = podDefaults({ podName: 'shard-0-3', dnsSuffix: SUFFIX, groupSize: 3, listen: '0.0.0.0:7000', placementSet: 'placement', dataEmpty: true });
  assert.deepEqual([empty.id, empty.replicas, empty.join], [104, self, true]);
  const recovering = podDefaults({ podName: 'shard-0-3', dnsSuffix: SUFFIX, groupSize: 3, listen: '0.0.0.0:7000', placementSet: 'placement', dataEmpty: false });
  assert.deepEqual([recovering.replicas, recovering.join], [self, undefined]);
  // A founder never joins, whatever its volume holds.
  assert.equal(podDefaults({ podName: 'shard-0-2', dnsSuffix: SUFFIX, groupSize: 3, listen: '0.0.0.0:7000', dataEmpty: true }).join, undefined);
  // The placement group does not grow by scaling its set.
  assert.throws(() => podDefaults({ podName: 'placement-3', dnsSuffix: SUFFIX, groupSize: 3, listen: '0.0.0.0:7000' }), /ordinal 3/);
});

test('an explicit group frees the set name (the operator: <store>-shard-<group id>), with its own placement size', () => {
  const d = podDefaults({ podName: 'demo-shard-4-1', dnsSuffix: SUFFIX, groupSize: 3, listen: '0.0.0.0:7000', group: 4, placementSet: 'demo-placement', placementSize: 5 });
  assert.deepEqual([d.id, d.group], [402, 4]);
  assert.deepEqual(d.replicas.map((r) => r.address), [0, 1, 2].map((m) => `demo-shard-4-${m}.demo-shard-4.${SUFFIX}:7000`));
  assert.deepEqual(d.placement, [0, 1, 2, 3, 4].map((m) => `demo-placement-${m}.demo-placement.${SUFFIX}:7000`));
  // Without an explicit group the name must say it.
  assert.throws(() => podDefaults({ podName: 'demo-shard-4-1', dnsSuffix: SUFFIX, groupSize: 3, listen: '0.0.0.0:7000' }), ConfigError);
  // Group size 0 (every pod joins or recovers): the placement set's size must be given.
  assert.throws(() => podDefaults({ podName: 'demo-shard-4-1', dnsSuffix: SUFFIX, groupSize: 0, listen: '0.0.0.0:7000', group: 4, placementSet: 'demo-placement' }), /placement-size/);
});

test('bootstrap groups carry every replica of each named shard set', () => {
  const groups = bootstrapGroups('shard-0, shard-1', 2, SUFFIX, 7000);
  assert.deepEqual(groups, [
    { id: 1, replicas: [{ id: 101, address: `shard-0-0.shard-0.${SUFFIX}:7000` }, { id: 102, address: `shard-0-1.shard-0.${SUFFIX}:7000` }] },
    { id: 2, replicas: [{ id: 201, address: `shard-1-0.shard-1.${SUFFIX}:7000` }, { id: 202, address: `shard-1-1.shard-1.${SUFFIX}:7000` }] },
  ]);
  assert.throws(() => bootstrapGroups('placement', 3, SUFFIX, 7000), ConfigError);
});

test('loadConfig derives identity from --pod-name; explicit flags still win', () => {
  const data = mkdtempSync(join(tmpdir(), 'kvs-pod-'));
  const base = { 'pod-name': 'shard-0-1', 'dns-suffix': SUFFIX, listen: '0.0.0.0:7000', data, 'placement-set': 'placement' };
  const c = loadConfig(base);
  assert.equal(c.id, 102);
  assert.equal(c.group, 1);
  assert.deepEqual(c.replicas.map((r) => r.address), [0, 1, 2].map((m) => `shard-0-${m}.shard-0.${SUFFIX}:7000`));
  assert.equal(c.placement.length, 3);
  assert.equal(c.initialGroups, undefined);
  assert.equal(loadConfig({ ...base, 'tick-ms': '20' }).tickMs, 20);
  assert.throws(() => loadConfig({ ...base, 'bootstrap-groups': 'shard-0' }), /placement replicas/);
  const p = loadConfig({ 'pod-name': 'placement-2', 'dns-suffix': SUFFIX, listen: '0.0.0.0:7000', data, 'bootstrap-groups': 'shard-0,shard-1,shard-2' });
  assert.equal(p.id, 3);
  assert.deepEqual(p.placement, []);
  assert.deepEqual(p.initialGroups?.map((g) => g.id), [1, 2, 3]);
  assert.throws(() => loadConfig({ ...base, 'dns-suffix': undefined }), /needs --dns-suffix/);
  assert.throws(() => loadConfig({ ...base, 'group-size': '0' }), /placement-size/);
  // The same from the environment, as the pod template gives it (an empty variable is unset).
  const e = loadConfig({ listen: '0.0.0.0:7000', data }, { KVS_POD_NAME: 'shard-2-0', KVS_DNS_SUFFIX: SUFFIX, KVS_PLACEMENT_SET: 'placement', KVS_BOOTSTRAP_GROUPS: '' });
  assert.equal(e.id, 301);
  assert.equal(e.placement.length, 3);
  assert.throws(() => loadConfig({ ...base, 'pod-name': undefined, 'dns-suffix': undefined, id: '1', replicas: '1=127.0.0.1:7000' }), /need --pod-name/);
});

test('loadConfig: a pod past the founders joins while its data directory is empty, and only then', () => {
  const data = mkdtempSync(join(tmpdir(), 'kvs-pod-'));
  // As the operator's StatefulSet gives it: an explicit group, group size 0 once the group is configured.
  const env = { KVS_POD_NAME: 'demo-shard-4-3', KVS_DNS_SUFFIX: SUFFIX, KVS_GROUP: '4', KVS_GROUP_SIZE: '0', KVS_PLACEMENT_SET: 'demo-placement', KVS_PLACEMENT_SIZE: '3' };
  const first = loadConfig({ listen: '0.0.0.0:7000', data }, env);
  assert.deepEqual([first.id, first.group, first.join, first.replicas.length, first.placement.length], [404, 4, true, 1, 3]);
  writeFileSync(join(data, 'data.mdb'), '');
  const again = loadConfig({ listen: '0.0.0.0:7000', data }, env);
  assert.deepEqual([again.join, again.replicas], [false, [{ id: 404, address: `demo-shard-4-3.demo-shard-4.${SUFFIX}:7000` }]]);
  // An explicit --join still wins.
  assert.equal(loadConfig({ listen: '0.0.0.0:7000', data, join: true }, env).join, true);
});
