// host:port with IPv6 hosts: the manifests listen on [::] (dual-stack), peers and clients may be
// given IPv6 literals. Brackets are required around an IPv6 host: `::1:7000` is itself an IPv6
// address without a port, and before it was read as host ::1, port 7000 (and `::1` as host ':', port 1).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addressProblem, joinHostPort, splitAddress } from '../../src/address/address.ts';
import { loadConfig } from '../../src/server/config.ts';
import { podDefaults } from '../../src/server/pod-identity.ts';

test('splitAddress and joinHostPort: IPv4, names and bracketed IPv6 round-trip', () => {
  const cases: [string, string, number][] = [
    ['127.0.0.1:7000', '127.0.0.1', 7000],
    ['kvs-0.kvs.ns.svc.cluster.local:7000', 'kvs-0.kvs.ns.svc.cluster.local', 7000],
    ['[::1]:7000', '::1', 7000],
    ['[::]:8080', '::', 8080],
    ['[fd00:10:244::1a]:7000', 'fd00:10:244::1a', 7000],
    ['[2001:db8::ffff:10.0.0.1]:6379', '2001:db8::ffff:10.0.0.1', 6379],
  ];
  for (const [address, host, port] of cases) {
    assert.deepEqual(splitAddress(address), [host, port], address);
    assert.equal(joinHostPort(host, port), address);
  }
});

test('an IPv6 host without brackets, or with unbalanced ones, is refused with the fix in the message', () => {
  for (const bad of ['::1', '::1:7000', 'fd00::1:7000', '[::1:7000', '::1]:7000', '[]:7000', '[[::1]]:7000']) {
    assert.ok(addressProblem(bad), `${bad} accepted`);
  }
  assert.match(addressProblem('::1:7000')!, /IPv6 host goes in brackets: \[::1\]:port/);
  assert.throws(() => loadConfig({ id: '1', listen: '::1:7001', data: '/nonexistent', replicas: '1=[::1]:7001' }), /--listen must be host:port.*IPv6 host goes in brackets/);
  assert.throws(() => loadConfig({ id: '1', listen: '[::]:7001', data: '/nonexistent', replicas: '1=::1:7001' }), /IPv6 host goes in brackets/);
});

test('a pod listening on [::] gets the DNS names of its peers with the listen port', () => {
  const d = podDefaults({ podName: 'shard-1-2', dnsSuffix: 'kvs.svc.cluster.local', groupSize: 3, listen: '[::]:7000', placementSet: 'placement' });
  assert.deepEqual(d.replicas.map((r) => r.address), [0, 1, 2].map((m) => `shard-1-${m}.shard-1.kvs.svc.cluster.local:7000`));
  assert.deepEqual(d.placement, [0, 1, 2].map((m) => `placement-${m}.placement.kvs.svc.cluster.local:7000`));
});
