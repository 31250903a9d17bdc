// kvs up's port layout: the first 100 replicas keep the ports the README documents; larger local
// clusters (64 shard groups) take further blocks, and no two endpoints ever share a port.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LOCAL_PORT_SPAN, MAX_LOCAL_REPLICAS, addedGroup, endpointsFor, ephemeralOverlap, parsePortRange, shardedLayout } from '../../src/cli/layout.ts';

const portOf = (address: string): number => Number(address.split(':').pop());
const ports = (e: ReturnType<typeof endpointsFor>): number[] => [e.native, e.resp!, e.grpc!, e.http!].map(portOf);

test('the first block keeps the documented ports; the next blocks follow 400 ports apart', () => {
  assert.deepEqual(ports(endpointsFor(7001, 0)), [7001, 7101, 7201, 7301]);
  assert.deepEqual(ports(endpointsFor(7001, 99)), [7100, 7200, 7300, 7400]);
  assert.deepEqual(ports(endpointsFor(7001, 100)), [7401, 7501, 7601, 7701]);
  assert.deepEqual(ports(endpointsFor(7001, 250)), [7851, 7951, 8051, 8151]);
});

test('64 shard groups of 3 and the placement group: every port distinct, inside the span', () => {
  const layout = shardedLayout('/d', 7001, 64, 3);
  assert.equal(layout.length, 195);
  const all = layout.flatMap((r) => ports(r.endpoints));
  assert.equal(new Set(all).size, all.length);
  assert.ok(Math.max(...all) <= 7001 + LOCAL_PORT_SPAN - 1);
  assert.ok(Math.min(...all) >= 7001);
  assert.equal(new Set(layout.map((r) => r.id)).size, layout.length);
});

test('the largest local cluster fits its span, and one more replica is refused', () => {
  const all = Array.from({ length: MAX_LOCAL_REPLICAS }, (_, n) => ports(endpointsFor(1024, n))).flat();
  assert.equal(new Set(all).size, all.length);
  assert.ok(Math.max(...all) <= 1024 + LOCAL_PORT_SPAN - 1);
  assert.throws(() => shardedLayout('/d', 7001, Math.floor(MAX_LOCAL_REPLICAS / 3), 3), /at most 300 replicas/);
});

// An outside review: `kvs up --shards 2`, `kvs replica remove --group 1 --id 101`, then `kvs
// reshard --shards 3` numbered group 3's slots from the count of replicas, below the highest slot
// in use: replica 301 got replica 203's ports.
test('a shard group added after a replica was removed takes free port slots only', () => {
  const layout = shardedLayout('/d', 7001, 2, 3).filter((r) => r.id !== 101);
  const added = addedGroup('/d', layout, 3, 3);
  const taken = new Set(layout.map((r) => r.endpoints.native));
  assert.deepEqual(added.map((r) => r.id), [301, 302, 303]);
  for (const r of added) assert.ok(!taken.has(r.endpoints.native), `${r.id} at ${r.endpoints.native}, a running replica's port`);
  assert.equal(new Set(added.map((r) => r.endpoints.native)).size, 3);
  assert.equal(added[0]!.endpoints.native, shardedLayout('/d', 7001, 2, 3).find((r) => r.id === 101)!.endpoints.native, 'the freed slot first');
});

// An outside fault test ran `kvs up --base-port 34001`: after a host was killed, replica 202 could
// not listen on its RESP port 34108 (EADDRINUSE, an outgoing connection's local port) and failed
// every restart. Ports in the kernel's ephemeral range are now named when kvs up starts.
test('the ports of a cluster inside the ephemeral port range are found', () => {
  const linux = parsePortRange('32768\t60999\n');
  assert.deepEqual(linux, [32768, 60999]);
  assert.equal(ephemeralOverlap(7001, linux), undefined, 'the default base port is clear of it');
  assert.equal(ephemeralOverlap(28501, linux), undefined);
  assert.deepEqual(ephemeralOverlap(34001, linux), [34001, 34001 + LOCAL_PORT_SPAN - 1]);
  assert.deepEqual(ephemeralOverlap(32000, linux), [32768, 32000 + LOCAL_PORT_SPAN - 1], 'a span reaching into it');
  assert.deepEqual(ephemeralOverlap(60500, linux), [60500, 60999]);
  assert.equal(ephemeralOverlap(34001, undefined), undefined, 'no range known: nothing to say');
  assert.equal(parsePortRange('garbage'), undefined);
  assert.equal(parsePortRange('5000 4000'), undefined);
});
