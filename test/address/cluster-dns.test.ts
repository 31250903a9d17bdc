// The cluster domain from the search list the kubelet writes, and the pods' DNS suffix completed with it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clusterDomain, completeDnsSuffix, searchDomains } from '../../src/address/cluster-dns.ts';

// As the kubelet writes it for a ClusterFirst pod of namespace kvs (node search domain appended).
const kubelet = (domain: string): string => `search kvs.svc.${domain} svc.${domain} ${domain} us-east-1.compute.internal\nnameserver 10.96.0.10\noptions ndots:5\n`;

test('the cluster domain is the one the kubelet put after svc.<domain>, whatever it is', () => {
  for (const d of ['cluster.local', 'k8s.corp.example', 'cluster', 'svc.example']) assert.equal(clusterDomain(kubelet(d)), d);
  // A trailing dot, comments, and the last search line winning, as glibc reads the file.
  assert.equal(clusterDomain('search old.example\n# search x.svc.bad svc.bad bad\nsearch kvs.svc.c.example. svc.c.example. c.example.  ; comment\n'), 'c.example');
  assert.deepEqual(searchDomains('domain a.example\nsearch b.example c.example\n'), ['b.example', 'c.example']);
});

test('no kubelet search list, no domain: dnsPolicy Default or None, a process outside a cluster', () => {
  for (const conf of [undefined, '', 'nameserver 10.255.255.53\n', 'search corp.example svc.example\n', 'search svc.cluster.local\n']) assert.equal(clusterDomain(conf), undefined, String(conf));
});

test('a `<namespace>.svc` suffix gets the domain; a qualified one stays as given', () => {
  assert.equal(completeDnsSuffix('kvs.svc', kubelet('cluster.local')), 'kvs.svc.cluster.local');
  assert.equal(completeDnsSuffix('kvs.svc', kubelet('k8s.corp.example')), 'kvs.svc.k8s.corp.example');
  // Another namespace's suffix: the domain is the cluster's, not the pod's namespace's.
  assert.equal(completeDnsSuffix('other.svc', kubelet('k8s.corp.example')), 'other.svc.k8s.corp.example');
  // Given in full (an overlay of an earlier version, a cluster without the kubelet's list): kept.
  assert.equal(completeDnsSuffix('kvs.svc.cluster.local', kubelet('k8s.corp.example')), 'kvs.svc.cluster.local');
  assert.equal(completeDnsSuffix('kvs.example', kubelet('cluster.local')), 'kvs.example');
});

test('namespace svc: its own search entry svc.svc.<domain> is not taken for svc.<domain>', () => {
  // The kubelet writes `svc.svc.D svc.D D`: the first two alone look like `svc.D'` followed by D' = svc.D.
  const conf = 'search svc.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n';
  assert.equal(clusterDomain(conf), 'cluster.local');
  assert.equal(completeDnsSuffix('svc.svc', conf), 'svc.svc.cluster.local');
});

test('no kubelet search list: cluster.local, the names earlier versions persisted, not a bare <namespace>.svc', () => {
  // A pod with dnsPolicy None or Default (spec.podTemplate, an overlay) or hostNetwork, or an operator
  // outside the cluster: earlier versions named svc.cluster.local there too, and the running cluster holds those names.
  for (const conf of [undefined, 'nameserver 1.1.1.1\n', 'search corp.example\nnameserver 10.96.0.10\n']) {
    assert.equal(completeDnsSuffix('kvs.svc', conf), 'kvs.svc.cluster.local', String(conf));
  }
});
