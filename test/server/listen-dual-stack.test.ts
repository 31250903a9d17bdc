// The settings the manifests give every replica listen on the IPv6 wildcard `[::]`: a dual-stack
// socket per door, so one default serves IPv4-only, IPv6-only and dual-stack clusters. Before, they
// listened on 0.0.0.0, which an IPv6-only pod (its IP, the kubelet's probes, its peers) cannot reach.
// A real replica in a network namespace with only ::1, then in one with only 127.0.0.1 (IPv6 off).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import net from 'node:net';
import { describe, it } from 'node:test';
import { IPV4_ANY, IPV6_ANY, listenTcp } from '../../src/address/listen.ts';

const child = fileURLToPath(new URL('./listen-child.ts', import.meta.url));
const canUnshare = spawnSync('unshare', ['-n', 'true']).status === 0;

function runIn(setup: string, client: string): Record<string, unknown> {
  const r = spawnSync('unshare', ['-n', 'bash', '-c', `set -e; ip link set lo up; ${setup}; exec node --import tsx ${child} ${client}`], { encoding: 'utf8', timeout: 60_000 });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  assert.ok(line.startsWith('{'), `child: status ${r.status}, stdout ${r.stdout}, stderr ${r.stderr}`);
  return JSON.parse(line) as Record<string, unknown>;
}

describe('the manifests\' listen addresses on a real replica', { skip: canUnshare ? false : 'needs unshare -n (root)' }, () => {
  const every = { listen: 'ok', resp: 'ok', grpc: 'ok', http: 'ok' };
  it('IPv6 only (::1, no 127.0.0.1): every door answers on ::1, a write and a read go through', () => {
    assert.deepEqual(runIn('ip addr del 127.0.0.1/8 dev lo', '::1'), { doors: every, value: 'v' });
  });
  it('IPv4 only (127.0.0.1, IPv6 turned off): every door answers on 127.0.0.1, a write and a read go through', () => {
    assert.deepEqual(runIn('ip addr del ::1/128 dev lo; sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.lo.disable_ipv6=1', '127.0.0.1'), { doors: every, value: 'v' });
  });
});

describe('listenTcp', () => {
  it('falls back from [::] to 0.0.0.0 only where the kernel has no IPv6 (EAFNOSUPPORT)', async () => {
    const tried: string[] = [];
    const fake = (code?: string): net.Server => {
      const s = net.createServer();
      s.listen = ((opts: { host: string }, cb: () => void) => {
        tried.push(opts.host);
        if (opts.host === IPV6_ANY && code) queueMicrotask(() => s.emit('error', Object.assign(new Error(code), { code })));
        else queueMicrotask(cb);
        return s;
      }) as unknown as net.Server['listen'];
      return s;
    };
    assert.equal(await listenTcp(fake('EAFNOSUPPORT'), IPV6_ANY, 7000), IPV4_ANY);
    assert.deepEqual(tried.splice(0), [IPV6_ANY, IPV4_ANY]);
    await assert.rejects(listenTcp(fake('EADDRINUSE'), IPV6_ANY, 7000), /EADDRINUSE/);
    assert.deepEqual(tried.splice(0), [IPV6_ANY], 'a port in use is not retried on IPv4');
    assert.equal(await listenTcp(fake(), IPV6_ANY, 7000), IPV6_ANY);
  });
});
