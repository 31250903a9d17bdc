// `kvs server --trace` and `kvs trace` settings: flags → config, config → tracer options.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseReplicas } from '../../src/cli/trace-command.ts';
import { loadConfig } from '../../src/server/config.ts';
import { interfaceFor, serverTraceOptions } from '../../src/trace/server-trace.ts';

const dir = mkdtempSync(join(tmpdir(), 'kvs-trace-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const flags = (extra: Record<string, string | boolean>): Record<string, string | undefined> =>
  ({ id: '2', group: '4', listen: '127.0.0.1:26802', data: dir, replicas: '1=127.0.0.1:26801,2=127.0.0.1:26802,3=127.0.0.1:26805', ...extra }) as Record<string, string | undefined>;

describe('server trace settings', () => {
  it('--trace is off unless given; --trace-format and --trace-iface are checked', () => {
    assert.equal(loadConfig(flags({})).trace, undefined);
    assert.deepEqual(loadConfig(flags({ trace: true })).trace, { format: 'text' });
    assert.deepEqual(loadConfig(flags({ trace: true, 'trace-format': 'json', 'trace-iface': 'eth0' })).trace, { format: 'json', iface: 'eth0' });
    assert.throws(() => loadConfig(flags({ trace: true, 'trace-format': 'xml' })), /--trace-format must be text or json/);
  });

  it('a replica traces what it sends, over every port of its group, labelled with its group', () => {
    const cfg = loadConfig(flags({ trace: true }));
    const o = serverTraceOptions({ ...cfg, trace: cfg.trace! }, {});
    assert.equal(o.self, 2);
    assert.equal(o.iface, 'lo');
    assert.deepEqual(o.ports, [26801, 26805]);
    assert.equal(o.directions, 'egress');
    assert.equal(o.label, 'g4 r2');
    assert.equal(o.capture, 'auto');
    assert.deepEqual(
      o.replicas.map((r) => [r.id, r.group]),
      [
        [1, 4],
        [2, 4],
        [3, 4],
      ],
    );
    assert.equal(serverTraceOptions({ ...cfg, trace: cfg.trace! }, { KVS_TRACE_CAPTURE: 'tap' }).capture, 'tap');
  });

  it('the interface: lo for loopback, the one carrying the address, else the first external one', () => {
    const nics = {
      lo: [{ address: '127.0.0.1', internal: true, family: 'IPv4' }],
      eth0: [{ address: '10.1.0.5', internal: false, family: 'IPv4' }],
      eth1: [{ address: '10.2.0.5', internal: false, family: 'IPv4' }],
    } as unknown as ReturnType<typeof import('node:os').networkInterfaces>;
    assert.equal(interfaceFor('127.0.0.1', nics), 'lo');
    assert.equal(interfaceFor('localhost', nics), 'lo');
    assert.equal(interfaceFor('10.2.0.5', nics), 'eth1');
    assert.equal(interfaceFor('0.0.0.0', nics), 'eth0');
    assert.equal(interfaceFor('::', nics), 'eth0', 'the manifests listen on [::] (kvs.yaml)');
  });

  it("the interface on an IPv6-only pod, listening on [::]: the pod's interface, not lo", () => {
    // Before: only an external IPv4 address counted, so an IPv6-only pod traced lo and saw none of its peer traffic.
    const nics = {
      lo: [{ address: '::1', internal: true, family: 'IPv6' }],
      eth0: [
        { address: 'fe80::1', internal: false, family: 'IPv6' },
        { address: 'fd00:10:244::5', internal: false, family: 'IPv6' },
      ],
    } as unknown as ReturnType<typeof import('node:os').networkInterfaces>;
    assert.equal(interfaceFor('::', nics), 'eth0');
    assert.equal(interfaceFor('::1', nics), 'lo');
    assert.equal(interfaceFor('fd00:10:244::5', nics), 'eth0');
  });

  it('kvs trace --replicas: ids, addresses, optional groups', () => {
    assert.deepEqual(parseReplicas('1=127.0.0.1:7001,101=127.0.0.1:7004@1'), [
      { id: 1, address: '127.0.0.1:7001', group: 0 },
      { id: 101, address: '127.0.0.1:7004', group: 1 },
    ]);
    assert.throws(() => parseReplicas('x=1'), /must be ID=HOST:PORT/);
  });
});
