// Where `kvs up --processes N` puts each replica (SharedHosts.hostOf): with R replicas per group on
// R hosts every host holds one replica of every group, so one host lost never costs a quorum; a
// replica keeps its host; added replicas spread out.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SharedHosts } from '../../src/cli/replica-launcher.ts';

/** Ids as `kvs up` numbers them: group 0 → 1..R, group g → g*100+1..g*100+R. */
function ids(groups: number, perGroup: number): { id: number; group: number }[] {
  const out: { id: number; group: number }[] = [];
  for (let g = 0; g <= groups; g++) for (let j = 1; j <= perGroup; j++) out.push({ id: g === 0 ? j : g * 100 + j, group: g });
  return out;
}

test('R replicas per group on R hosts: every host holds one replica of every group', () => {
  for (const r of [1, 3, 5]) {
    const hosts = new SharedHosts(r);
    const placed = ids(3, r).map((x) => ({ ...x, host: hosts.hostOf(x.id, x.group) }));
    for (let k = 0; k < r; k++) assert.deepEqual(placed.filter((p) => p.host === k).map((p) => p.group), [0, 1, 2, 3], `host ${k} of ${r}`);
  }
});

test('no host holds a quorum of any group when there are at least as many hosts as replicas per group', () => {
  for (const [hostsN, perGroup] of [[3, 3], [5, 3], [5, 5], [7, 5]] as const) {
    const hosts = new SharedHosts(hostsN);
    const placed = ids(4, perGroup).map((x) => ({ ...x, host: hosts.hostOf(x.id, x.group) }));
    for (let g = 0; g <= 4; g++) {
      for (let k = 0; k < hostsN; k++) assert.ok(placed.filter((p) => p.group === g && p.host === k).length <= 1, `group ${g} twice on host ${k}`);
    }
  }
});

test('a replica keeps its host; an added replica goes where its group has fewest, then where fewest run', () => {
  const hosts = new SharedHosts(3);
  for (const x of ids(2, 3)) hosts.hostOf(x.id, x.group);
  assert.equal(hosts.hostOf(102, 1), hosts.hostOf(102, 1));
  const first = hosts.hostOf(104, 1); // every host has one of group 1 and three replicas: host 0
  assert.equal(first, 0);
  assert.equal(hosts.hostOf(105, 1), 1); // hosts 1 and 2 have one of group 1; host 1 first
  assert.equal(hosts.hostOf(301, 3), 2); // a new group: host 2 runs fewest now
  assert.equal(hosts.hostOf(104, 1), first);
});
