// `kvs server` settings: one table → flags, KVS_* variables, YAML keys, --help; precedence; typos.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, OTHER_KVS_VARIABLES, SETTINGS, envName, loadConfig, nearest, serverFlagOptions, settingsHelp, type ServerConfig } from '../../src/server/config.ts';

const dir = mkdtempSync(join(tmpdir(), 'kvs-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const BASE = { id: '2', listen: '127.0.0.1:7002', data: join(dir, 'data'), replicas: '1=127.0.0.1:7001,2=127.0.0.1:7002' };

let files = 0;
function yamlFile(text: string): string {
  const p = join(dir, `c${files++}.yaml`);
  writeFileSync(p, text);
  return p;
}

/** A valid value for every setting, as a flag or variable would give it, and the config field it yields. */
const SAMPLES: Record<keyof typeof SETTINGS, [string | boolean, (c: ServerConfig) => unknown, unknown]> = {
  config: [yamlFile('group: 3\n'), (c) => c.group, 3],
  id: ['2', (c) => c.id, 2],
  group: ['7', (c) => c.group, 7],
  listen: ['127.0.0.1:7002', (c) => c.listen, '127.0.0.1:7002'],
  dataDir: [join(dir, 'other'), (c) => c.dataDir, join(dir, 'other')],
  sharedData: [join(dir, 'shared'), (c) => c.sharedData, join(dir, 'shared')],
  replicas: ['2=127.0.0.1:7002', (c) => c.replicas, [{ id: 2, address: '127.0.0.1:7002' }]],
  placement: ['127.0.0.1:9001,127.0.0.1:9002', (c) => c.placement, ['127.0.0.1:9001', '127.0.0.1:9002']],
  join: [true, (c) => c.join, true],
  tickMs: ['20', (c) => c.tickMs, 20],
  electionTicks: ['12', (c) => c.electionTicks, 12],
  heartbeatTicks: ['2', (c) => c.heartbeatTicks, 2],
  quietAfterTicks: ['0', (c) => c.quietAfterTicks, 0],
  requestTimeoutMs: ['777', (c) => c.requestTimeoutMs, 777],
  maxKeyBytes: ['100', (c) => c.maxKeyBytes, 100],
  maxValueBytes: ['1000', (c) => c.maxValueBytes, 1000],
  logTail: ['9', (c) => c.logTail, 9],
  handoffWave: ['8', (c) => c.handoffWave, 8],
  resp: ['127.0.0.1:6379', (c) => c.resp, '127.0.0.1:6379'],
  respWriteLingerMs: ['0', (c) => c.respWriteLingerMs, 0],
  grpc: ['127.0.0.1:6380', (c) => c.grpc, '127.0.0.1:6380'],
  http: ['127.0.0.1:6381', (c) => c.http, '127.0.0.1:6381'],
  trace: [true, (c) => c.trace, { format: 'text' }],
  traceIface: ['eth0', (c) => c.trace?.iface, 'eth0'],
  traceFormat: ['json', (c) => c.trace?.format, 'json'],
  logFormat: ['text', (c) => c.logFormat, 'text'],
  logLevel: ['warn', (c) => c.logLevel, 'warn'],
  podName: ['shard-0-1', (c) => c.podName, 'shard-0-1'],
  dnsSuffix: ['kvs.svc.cluster.local', (c) => c.dnsSuffix, 'kvs.svc.cluster.local'],
  groupSize: ['5', (c) => c.groupSize, 5],
  placementSet: ['placement', (c) => c.placement[0], 'placement-0.placement.kvs.svc.cluster.local:7002'],
  placementSize: ['2', (c) => c.placement.length, 2],
  bootstrapGroups: ['shard-0,shard-1', (c) => c.initialGroups?.map((g) => g.id), [1, 2]],
};
// trace-iface and trace-format matter only with --trace; --join needs --placement.
const NEEDS: Partial<Record<keyof typeof SETTINGS, Record<string, string | boolean>>> = {
  traceIface: { trace: true },
  traceFormat: { trace: true },
  join: { placement: '127.0.0.1:9001' },
  podName: { 'dns-suffix': 'kvs.svc.cluster.local' },
  dnsSuffix: { 'pod-name': 'shard-0-1' },
  placementSet: { 'pod-name': 'shard-0-1', 'dns-suffix': 'kvs.svc.cluster.local' },
  placementSize: { 'pod-name': 'shard-0-1', 'dns-suffix': 'kvs.svc.cluster.local', 'placement-set': 'placement' },
  bootstrapGroups: { 'pod-name': 'placement-1', 'dns-suffix': 'kvs.svc.cluster.local' },
};

describe('server configuration', () => {
  it('every setting is a flag, a KVS_* variable and a YAML key spelled like the flag, with the same effect', () => {
    const options = serverFlagOptions();
    const help = settingsHelp();
    for (const [name, s] of Object.entries(SETTINGS) as [keyof typeof SETTINGS, (typeof SETTINGS)[keyof typeof SETTINGS]][]) {
      const [value, get, want] = SAMPLES[name];
      assert.ok(options[s.flag], `--${s.flag} is an option`);
      assert.match(help, new RegExp(`^  --${s.flag}\\b`, 'm'), `--${s.flag} is in --help`);
      const needs = NEEDS[name] ?? {};
      assert.deepEqual(get(loadConfig({ ...BASE, ...needs, [s.flag]: value })), want, `--${s.flag}`);
      const env = { [envName(s.flag)]: String(value) };
      assert.deepEqual(get(loadConfig({ ...BASE, ...needs, [s.flag]: undefined }, env)), want, envName(s.flag));
      if (name === 'config') continue; // a file cannot name itself
      const yaml = yamlFile(`${s.flag}: ${JSON.stringify(value)}\n`);
      assert.deepEqual(get(loadConfig({ ...BASE, ...needs, [s.flag]: undefined, config: yaml })), want, `${s.flag}: in YAML`);
    }
  });

  it('variable names follow the flags', () => {
    assert.equal(envName('request-timeout-ms'), 'KVS_REQUEST_TIMEOUT_MS');
    assert.equal(envName('data'), 'KVS_DATA');
  });

  it('precedence: flag > environment > YAML file > default', () => {
    const file = yamlFile('request-timeout-ms: 3000\ntick-ms: 30\nlog-tail: 10\n');
    const env = { KVS_REQUEST_TIMEOUT_MS: '2000', KVS_TICK_MS: '20' };
    const c = loadConfig({ ...BASE, config: file, 'request-timeout-ms': '1000' }, env);
    assert.equal(c.requestTimeoutMs, 1000); // flag over env and file
    assert.equal(c.tickMs, 20); // env over file
    assert.equal(c.logTail, 10); // file over default
    assert.equal(c.electionTicks, 10); // default
    assert.equal(loadConfig({ ...BASE }, { KVS_CONFIG: file }).tickMs, 30); // the file named by KVS_CONFIG
  });

  it('an empty variable counts as unset', () => {
    assert.equal(loadConfig({ ...BASE }, { KVS_TICK_MS: '' }).tickMs, 50);
  });

  it('the whole configuration can come from the environment (a pod spec)', () => {
    const c = loadConfig({}, { KVS_ID: '1', KVS_LISTEN: '0.0.0.0:7001', KVS_DATA: join(dir, 'pod'), KVS_REPLICAS: '1=kvs-0:7001,2=kvs-1:7001', KVS_HTTP: '0.0.0.0:8080' });
    assert.deepEqual([c.id, c.listen, c.http, c.replicas.length], [1, '0.0.0.0:7001', '0.0.0.0:8080', 2]);
  });

  it('YAML: lists for replicas and placement, booleans, numbers', () => {
    const file = yamlFile(['replicas:', '  - {id: 1, address: "127.0.0.1:7001"}', '  - {id: 2, address: "127.0.0.1:7002"}', 'placement: ["127.0.0.1:9001"]', 'join: true', 'tick-ms: 25', ''].join('\n'));
    const c = loadConfig({ id: '2', listen: '127.0.0.1:7002', data: join(dir, 'data'), config: file });
    assert.deepEqual(c.replicas, [
      { id: 1, address: '127.0.0.1:7001' },
      { id: 2, address: '127.0.0.1:7002' },
    ]);
    assert.deepEqual([c.placement, c.join, c.tickMs], [['127.0.0.1:9001'], true, 25]);
  });

  it('an unknown YAML key is an error naming it and the nearest valid key', () => {
    const err = (text: string): RegExp | string => {
      try {
        loadConfig({ ...BASE, config: yamlFile(text) });
      } catch (e) {
        assert.ok(e instanceof ConfigError);
        return e.message;
      }
      assert.fail('accepted');
    };
    assert.match(String(err('tickMS: 10\n')), /unknown key "tickMS" in config file .*did you mean "tick-ms"/);
    assert.match(String(err('dataDir: /x\n')), /unknown key "dataDir".*did you mean "data"/);
    assert.match(String(err('request-timeout: 10\n')), /did you mean "request-timeout-ms"/);
    assert.match(String(err('election-tick: 10\n')), /did you mean "election-ticks"/);
    assert.match(String(err('config: other.yaml\n')), /unknown key "config"/);
    assert.match(String(err('- 1\n- 2\n')), /is not a YAML mapping/);
    assert.match(String(err('a: [\n')), /is not valid YAML/);
  });

  it('an unknown KVS_* variable is an error naming it and the nearest valid one; other variables are ignored', () => {
    assert.throws(() => loadConfig({ ...BASE }, { KVS_TICKMS: '5' }), /unknown environment variable KVS_TICKMS \(did you mean KVS_TICK_MS\?\)/);
    assert.throws(() => loadConfig({ ...BASE }, { KVS_REQUEST_TIMEOUT: '5' }), /did you mean KVS_REQUEST_TIMEOUT_MS/);
    assert.equal(loadConfig({ ...BASE }, { KVS_ENDPOINTS: 'a:1', KVS_TRACE_CAPTURE: 'tap', HOME: '/root', PATH: '/bin' }).id, 2);
  });

  it('values are checked wherever they come from, and the error says where', () => {
    assert.throws(() => loadConfig({ ...BASE, 'tick-ms': '0' }), /--tick-ms must be an integer in \[1, 10000\], got "0"/);
    assert.throws(() => loadConfig({ ...BASE }, { KVS_TICK_MS: 'fast' }), /KVS_TICK_MS must be an integer/);
    assert.throws(() => loadConfig({ ...BASE, config: yamlFile('tick-ms: 1.5\n') }), /tick-ms \(in .*\) must be an integer/);
    assert.throws(() => loadConfig({ ...BASE }, { KVS_JOIN: 'yes' }), /KVS_JOIN must be true or false/);
    assert.throws(() => loadConfig({ ...BASE }, { KVS_HTTP: 'nohost' }), /KVS_HTTP must be host:port/);
    assert.throws(() => loadConfig({ ...BASE, 'trace-format': 'xml' }), /--trace-format must be text or json, got "xml"/);
    assert.throws(() => loadConfig({ ...BASE, id: undefined }), /--id is required \(or KVS_ID/);
    assert.throws(() => loadConfig({ ...BASE, replicas: undefined }), /--replicas is required/);
    assert.throws(() => loadConfig({ ...BASE, 'heartbeat-ticks': '10' }), /heartbeat-ticks must be smaller/);
  });

  it('nearest: case and separators first, then edit distance', () => {
    assert.equal(nearest('maxValueBytes', ['max-key-bytes', 'max-value-bytes']), 'max-value-bytes');
    assert.equal(nearest('hadoff-wave', ['handoff-wave', 'log-tail']), 'handoff-wave');
  });

  // Regression: .ci/run exported KVS_K8S_REQUIRE for the container tests; every replica the other
  // tests started inherited it and exited 2 ("unknown environment variable"). Every KVS_* variable
  // the project reads or its CI sets must be a setting's variable or a listed other variable.
  it('every KVS_* variable the code reads or CI sets is one a replica accepts', () => {
    const root = join(import.meta.dirname, '../..');
    const known = new Set([...Object.values(SETTINGS).map((s) => envName(s.flag)), ...OTHER_KVS_VARIABLES]);
    const found = new Map<string, string>();
    const scan = (dir: string): void => {
      for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
        const rel = join(dir, e.name);
        if (e.isDirectory()) scan(rel);
        else if (/\.(ts|js)$/.test(e.name)) {
          for (const m of readFileSync(join(root, rel), 'utf8').matchAll(/process\.env(?:\.|\[['"])(KVS_[A-Z0-9_]+)/g)) found.set(m[1]!, rel);
        }
      }
    };
    for (const dir of ['src', 'test', 'bench', 'bin']) scan(dir);
    for (const file of ['.ci/run', 'Makefile']) {
      for (const m of readFileSync(join(root, file), 'utf8').matchAll(/\b(KVS_[A-Z0-9_]+)=/g)) found.set(m[1]!, file);
    }
    assert.ok(found.has('KVS_TRACE_REQUIRE'), 'the scan finds the variables .ci/run sets');
    for (const [name, where] of found) assert.ok(known.has(name), `${name} (in ${where}) would make kvs server exit: add it to OTHER_KVS_VARIABLES`);
  });
});
