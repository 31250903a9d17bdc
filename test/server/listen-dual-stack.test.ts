// The settings the manifests give every replica listen on the IPv6 wildcard `[::]`: a dual-stack
// socket per door, so one default serves IPv4-only, IPv6-only and dual-stack clusters. Before, they
// listened on 0.0.0.0, which an IPv6-only pod (its IP, the kubelet's probes, its peers) cannot reach.
// A real replica in a network namespace with only ::1, then in one with only 127.0.0.1 (IPv6 off).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { IPV4_ANY, IPV6_ANY, listenAddress, listenTcp } from '../../src/address/listen.ts';
import { listenApp } from '../../src/doors/http-door.ts';
import { nodeUws } from '../../src/doors/node-http.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { loadConfig } from '../../src/server/config.ts';
import { KvsServer } from '../../src/server/server.ts';

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

/** A kernel without IPv6: every listen on [::] fails EAFNOSUPPORT (as listenTcp's fake above), in this process until undone. */
function withoutIpv6(): () => void {
  const original = net.Server.prototype.listen;
  net.Server.prototype.listen = function (this: net.Server, ...args: unknown[]) {
    const o = args[0] as { host?: string } | undefined;
    if (typeof o === 'object' && o?.host === IPV6_ANY) {
      process.nextTick(() => this.emit('error', Object.assign(new Error('listen EAFNOSUPPORT: address family not supported :::0'), { code: 'EAFNOSUPPORT' })));
      return this;
    }
    return original.apply(this, args as Parameters<typeof original>);
  } as typeof original;
  return () => {
    net.Server.prototype.listen = original;
  };
}

// The HTTP door reported the host it was asked for, `[::]:port`, after falling back to 0.0.0.0 (and
// so did the native door): status `endpoints` and RESP INFO named an IPv6 wildcard nothing listened on.
describe('after the fallback from [::] to 0.0.0.0, every door reports the address it bound', () => {
  it('listenAddress (native, RESP and gRPC doors) says 0.0.0.0 and the port taken', async () => {
    const restore = withoutIpv6();
    const s = net.createServer();
    try {
      const address = await listenAddress(s, '[::]:0', () => {});
      assert.match(address, /^0\.0\.0\.0:\d+$/);
      assert.notEqual(address, '0.0.0.0:0', 'the port taken, not the one asked');
    } finally {
      restore();
      s.close();
    }
  });

  it('the HTTP door on uWebSockets (a listen that fails without a reason) says 0.0.0.0', async () => {
    const tried: string[] = [];
    const app = {
      listen: (host: string, _port: number, cb: (s: never) => void): void => {
        tried.push(host);
        cb((host === IPV6_ANY ? false : { fake: true }) as never);
      },
    };
    assert.deepEqual(await listenApp(app, '[::]:7301', () => 7301).then((r) => r.address), '0.0.0.0:7301');
    assert.deepEqual(tried.splice(0), [IPV6_ANY, IPV4_ANY]);
    assert.equal((await listenApp(app, '127.0.0.1:0', () => 40001)).address, '127.0.0.1:40001');
    await assert.rejects(listenApp({ listen: (_h: string, _p: number, cb: (s: never) => void) => cb(false as never) }, '[::]:7301', () => 0), /cannot listen on \[::\]:7301 \(HTTP door\)/);
  });

  it('a replica with every door on [::] reports 0.0.0.0 for each in status endpoints and RESP INFO', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvs-listen-fallback-'));
    const [port, resp, grpc, http] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    const restore = withoutIpv6();
    const wasImpl = process.env.KVS_HTTP_IMPL;
    process.env.KVS_HTTP_IMPL = 'node'; // uWebSockets listens outside net.Server: the node:http door goes through the patched listen
    let server: KvsServer | undefined;
    try {
      const config = loadConfig({ id: '1', listen: `[::]:${port}`, data: join(dir, 'r1'), replicas: `1=127.0.0.1:${port}`, resp: `[::]:${resp}`, grpc: `[::]:${grpc}`, http: `[::]:${http}` }, {});
      server = await KvsServer.start(config, { log: silentLogger });
      const e = server.endpoints;
      assert.equal(e.native, `0.0.0.0:${port}`);
      assert.deepEqual([e.resp, e.grpc, e.http], [`0.0.0.0:${resp}`, `0.0.0.0:${grpc}`, `0.0.0.0:${http}`]);
      assert.equal(e.ws, `ws://${e.http}/v1/ws`);
      const status = (await (await fetch(`http://127.0.0.1:${http}/v1/status`)).json()) as { endpoints: Record<string, string> };
      assert.deepEqual(status.endpoints, e);
      const info = await respInfo(resp);
      assert.match(info, new RegExp(`endpoint_native:0\\.0\\.0\\.0:${port}\r\n`));
      assert.match(info, /endpoint_http:0\.0\.0\.0:\d+\r\n/);
      assert.doesNotMatch(info, /\[::\]/);
    } finally {
      await server?.close();
      restore();
      if (wasImpl === undefined) delete process.env.KVS_HTTP_IMPL;
      else process.env.KVS_HTTP_IMPL = wasImpl;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** `INFO kvs` through the RESP door, the whole bulk reply. */
function respInfo(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => sock.write('INFO kvs\r\n'));
    let text = '';
    sock.on('data', (d) => {
      text += d.toString();
      const m = /^\$(\d+)\r\n/.exec(text);
      if (m && Buffer.byteLength(text) >= m[0].length + Number(m[1]) + 2) {
        sock.destroy();
        resolve(text);
      }
    });
    sock.on('error', reject);
  });
}

// A listening server's 'error' is a connection it failed to accept (ENOMEM, ENOBUFS; EMFILE only
// when libuv's reserve descriptor cannot absorb it: a flood of 200 connections at ulimit -n 40 did
// not get there): the server listens on. No door listened for it after its listen: one such
// accept failure was an uncaught exception that ended the replica.
describe('a door whose listening server reports an accept error', () => {
  const acceptError = (): Error => Object.assign(new Error('accept ENOMEM'), { code: 'ENOMEM', syscall: 'accept' });

  it('listenAddress (native, RESP and gRPC doors) passes it to the door and listens on', async () => {
    const heard: Error[] = [];
    const s = net.createServer((c) => c.end('hello'));
    try {
      const address = await listenAddress(s, '127.0.0.1:0', (e) => heard.push(e));
      s.emit('error', acceptError());
      assert.deepEqual(heard.map((e) => e.message), ['accept ENOMEM']);
      const port = Number(address.slice(address.lastIndexOf(':') + 1));
      const got = await new Promise<string>((resolve, reject) => {
        const c = net.connect(port, '127.0.0.1');
        c.on('error', reject);
        c.on('data', (d: Buffer) => resolve(d.toString()));
      });
      assert.equal(got, 'hello');
    } finally {
      s.close();
    }
  });

  it('the HTTP door on node:http (the fallback) listens on', async () => {
    const app = nodeUws().App();
    const server = await new Promise<net.Server>((resolve, reject) => app.listen('127.0.0.1', 0, (h) => (h ? resolve(h as unknown as net.Server) : reject(new Error('listen failed')))));
    try {
      assert.doesNotThrow(() => server.emit('error', acceptError()));
      assert.ok(server.listening);
    } finally {
      server.close();
    }
  });
});
