// The kvs client commands as a user runs them (the compiled bin against one real replica):
// byte-exact get/scan output, `put KEY -` from stdin, --json for non-UTF-8 bytes, KVS_ENDPOINTS,
// --version; and `kvs server` refusing an unknown KVS_* variable.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { jsonBytes } from '../../src/cli/bytes-output.ts';
import { TestCluster } from '../server/cluster.ts';

const BIN = resolve(import.meta.dirname, '../../bin/kvs.js');
const VERSION = (JSON.parse(readFileSync(resolve(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string }).version;
// A directory without data/cluster.json, so only --endpoints or KVS_ENDPOINTS can name the cluster.
const cwd = mkdtempSync(join(tmpdir(), 'kvs-cli-'));

interface Ran {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

function kvs(args: string[], opts: { input?: Uint8Array; env?: NodeJS.ProcessEnv } = {}): Promise<Ran> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', fail);
    // A command that exits before reading all its input (a refused value, a failed start): EPIPE
    // here, which unheard was an uncaught exception; the exit code and stderr tell what happened.
    child.stdin.on('error', () => {});
    child.on('close', (code) => done({ code, stdout: Buffer.concat(out), stderr: err }));
    child.stdin.end(opts.input ?? Buffer.alloc(0));
  });
}

// Every byte value, behind a UTF-8 byte order mark (which a default TextDecoder would drop).
const BINARY = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(Array.from({ length: 256 }, (_, i) => i)), Buffer.from('\n\n')]);

describe('kvs client commands', () => {
  let cluster: TestCluster;
  let ep: string[];
  before(async () => {
    cluster = await TestCluster.start({ replicas: 1, basePort: 25100 });
    ep = ['--endpoints', cluster.endpoints().join(',')];
  });
  after(async () => {
    await cluster?.stop();
    rmSync(cwd, { recursive: true, force: true });
  });

  it('put KEY - stores stdin byte for byte; get writes the bytes unchanged', async () => {
    const put = await kvs(['put', 'bin', '-', ...ep], { input: BINARY });
    assert.equal(put.code, 0, put.stderr);
    const got = await kvs(['get', 'bin', ...ep]);
    assert.equal(got.code, 0, got.stderr);
    assert.ok(got.stdout.equals(BINARY), 'stdout is exactly the stored bytes (no newline added off a terminal)');
    const empty = await kvs(['put', 'empty', '-', ...ep], { input: Buffer.alloc(0) });
    assert.equal(empty.code, 0, empty.stderr);
    assert.equal((await kvs(['get', 'empty', ...ep])).stdout.length, 0);
  });

  it('--json: UTF-8 as "value", anything else as "valueBase64"', async () => {
    const bin = JSON.parse((await kvs(['get', 'bin', '--json', ...ep])).stdout.toString()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(bin).sort(), ['found', 'key', 'valueBase64']);
    assert.ok(Buffer.from(String(bin.valueBase64), 'base64').equals(BINARY));
    assert.equal((await kvs(['put', 'text', 'héllo', ...ep])).code, 0);
    assert.deepEqual(JSON.parse((await kvs(['get', 'text', '--json', ...ep])).stdout.toString()), { key: 'text', value: 'héllo', found: true });
    const missing = await kvs(['get', 'nope', '--json', ...ep]);
    assert.equal(missing.code, 1);
    assert.deepEqual(JSON.parse(missing.stdout.toString()), { key: 'nope', value: null, found: false });
    const emptyKey = await kvs(['get', '', ...ep]);
    assert.equal(emptyKey.code, 1, `the empty key cannot be stored, so it is not found: ${emptyKey.stderr.toString()}`);
  });

  // An outside test: `kvs put $'\xff' v1` stored the key EF BF BD (Node decodes arguments as UTF-8
  // with U+FFFD for what is not), so $'\xfe' read the same key back; `put k $'\xff\xfe'` stored
  // the value EF BF BD EF BF BD. Such arguments are refused; the empty key too, as a usage error.
  it('arguments that are not valid UTF-8, and the empty key in a write, are usage errors', async () => {
    const key = await kvs(['put', 'bad-\uFFFD', 'v', ...ep]);
    assert.equal(key.code, 2, key.stderr);
    assert.match(key.stderr, /argument 1 is not valid UTF-8/);
    const value = await kvs(['put', 'k', '\uFFFD\uFFFD', ...ep]);
    assert.equal(value.code, 2, value.stderr);
    assert.match(value.stderr, /argument 2 is not valid UTF-8.*stdin with "-"/);
    assert.equal((await kvs(['get', 'bad-\uFFFD', ...ep])).code, 2);
    for (const cmd of ['put', 'del']) {
      const empty = await kvs(cmd === 'put' ? ['put', '', 'v', ...ep] : ['del', '', ...ep]);
      assert.equal(empty.code, 2, `${cmd}: ${empty.stderr}`);
      assert.match(empty.stderr, /the key is empty/);
    }
  });

  it('a value that starts with "-" is passed after "--"; without it the error says so', async () => {
    const bare = await kvs(['put', 'counter', '-1', ...ep]);
    assert.equal(bare.code, 2);
    assert.match(bare.stderr.toString(), /goes after "--"/);
    assert.equal((await kvs(['put', ...ep, 'counter', '--', '-1'])).code, 0);
    assert.equal((await kvs(['get', 'counter', ...ep])).stdout.toString(), '-1');
    assert.equal((await kvs(['del', 'counter', ...ep])).code, 0); // the scan below lists every key
  });

  it('scan: raw KEY<tab>VALUE lines; --json encodes non-UTF-8 keys and values', async () => {
    const client = cluster.client();
    try {
      await client.put(Buffer.from([0x73, 0xff, 0x00]), Buffer.from('v'));
    } finally {
      client.close();
    }
    const raw = await kvs(['scan', 's', 't', ...ep]);
    assert.equal(raw.code, 0, raw.stderr);
    assert.ok(raw.stdout.equals(Buffer.from([0x73, 0xff, 0x00, 0x09, 0x76, 0x0a])), raw.stdout.toString('hex'));
    const json = JSON.parse((await kvs(['scan', '--json', ...ep])).stdout.toString()) as { items: Record<string, string>[] };
    assert.deepEqual(
      json.items.map((i) => Object.keys(i).join(',')),
      ['key,valueBase64', 'key,value', 'keyBase64,value', 'key,value'],
    );
    assert.equal(json.items[2]!.keyBase64, Buffer.from([0x73, 0xff, 0x00]).toString('base64'));
  });

  it('KVS_ENDPOINTS names the cluster when --endpoints is not given; --endpoints wins', async () => {
    const env = { ...process.env, KVS_ENDPOINTS: cluster.endpoints().join(',') };
    const got = await kvs(['get', 'text'], { env });
    assert.equal(got.code, 0, got.stderr);
    assert.equal(got.stdout.toString(), 'héllo');
    const wrong = await kvs(['get', 'text', '--endpoints', '127.0.0.1:1', '--timeout-ms', '300'], { env });
    assert.equal(wrong.code, 3, 'the flag overrides the variable');
    const none = await kvs(['get', 'text'], { env: { ...process.env, KVS_ENDPOINTS: '' } });
    assert.equal(none.code, 2);
    assert.match(none.stderr, /KVS_ENDPOINTS/);
  });

  it('a malformed address or an overlong timeout is a usage error (exit 2), not a failed request', async () => {
    for (const args of [
      ['--endpoints', 'foo'],
      ['--endpoints', '127.0.0.1:99999'],
      ['--placement', 'host-without-port'],
      ['--endpoints', cluster.endpoints()[0]!, '--timeout-ms', '100000000000000000000'],
    ]) {
      const r = await kvs(['get', 'k', ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /host:port|timeout-ms/);
    }
  });

  // An outside test: with --json, errors were still plain text on stderr.
  it('--json: every error is one JSON object on stderr, with the same exit codes', async () => {
    const dead = ['--endpoints', '127.0.0.1:1', '--timeout-ms', '300'];
    const cases: [string[], number, string][] = [
      [['get', 'k', '--json', '--bogus', ...ep], 2, 'USAGE'],
      [['put', 'k', '--json', ...ep], 2, 'USAGE'], // one argument short
      [['del', 'k', '--json', '--timeout-ms', '0', ...ep], 2, 'USAGE'],
      [['scan', '--json', '--limit', 'x', ...ep], 2, 'USAGE'],
      [['status', '--json', '--endpoints', 'foo'], 2, 'USAGE'],
      [['get', 'k', '--json', ...dead], 3, 'UNREACHABLE'],
      [['put', 'k', 'v', '--json', ...dead], 3, 'UNREACHABLE'],
      [['del', 'k', '--json', ...dead], 3, 'UNREACHABLE'],
      [['scan', '--json', ...dead], 3, 'UNREACHABLE'],
      [['put', 'k'.repeat(4027), 'v', '--json', ...ep], 2, 'TOO_LARGE'],
    ];
    for (const [args, code, errorCode] of cases) {
      const r = await kvs(args);
      assert.equal(r.code, code, `${args.join(' ').slice(0, 80)}: ${r.stderr}`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `one line: ${r.stderr}`);
      const err = JSON.parse(lines[0]!) as { error: { code: string; message: string } };
      assert.equal(err.error.code, errorCode, r.stderr);
      assert.ok(err.error.message.length > 0 && !err.error.message.includes('Usage:'), r.stderr);
      assert.equal(r.stdout.length, 0);
    }
    // Without --json, and with "--json" as a value after "--", errors stay text.
    const text = await kvs(['get', 'k', ...dead]);
    assert.equal(text.code, 3);
    assert.match(text.stderr, /^kvs get: UNREACHABLE: /);
    const value = await kvs(['put', ...dead, 'k', '--', '--json']);
    assert.equal(value.code, 3);
    assert.match(value.stderr, /^kvs put: UNREACHABLE: /);
  });

  // An outside test: `kvs put` with a 4027-byte key exited 3 (request failed), not 2.
  it('a key or value over the limits is a usage error (exit 2), refused before anything is sent', async () => {
    const dead = ['--endpoints', '127.0.0.1:1', '--timeout-ms', '300']; // exit 3 if anything were sent
    const long = 'k'.repeat(4027);
    for (const args of [['put', long, 'v'], ['get', long], ['del', long], ['scan', long], ['scan', 'a', long]]) {
      const r = await kvs([...args, ...dead]);
      assert.equal(r.code, 2, `${args[0]}: ${r.stderr}`);
      assert.match(r.stderr, /(key|START|END) of 4027 bytes exceeds the limit of 4026 bytes/);
    }
    const big = await kvs(['put', 'k', '-', ...dead], { input: Buffer.alloc((4 << 20) + 1) });
    assert.equal(big.code, 2, big.stderr);
    assert.match(big.stderr, /the value on stdin exceeds the limit of 4194304 bytes/);
    // 4026 bytes is a key; a value over this server's limit (1 MiB) is refused by it, also exit 2.
    assert.equal((await kvs(['put', 'k'.repeat(4026), 'v', ...ep])).code, 0);
    assert.equal((await kvs(['del', 'k'.repeat(4026), ...ep])).code, 0);
    const over = await kvs(['put', 'k', '-', ...ep], { input: Buffer.alloc((1 << 20) + 1) });
    assert.equal(over.code, 2, over.stderr);
    assert.match(over.stderr, /TOO_LARGE: value of 1048577 bytes exceeds the limit of 1048576 bytes/);
  });

  it('kvs --version and kvs version print the package version', async () => {
    for (const args of [['--version'], ['version']]) {
      const r = await kvs(args);
      assert.equal(r.code, 0);
      assert.equal(r.stdout.toString(), `kvs ${VERSION}\n`);
    }
  });

  it('kvs bench runs the load generator from bench/ in a checkout', async () => {
    const r = await kvs(['bench', '--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout.toString(), /^Usage: kvs bench/);
  });

  it('kvs server refuses an unknown KVS_* variable, naming the nearest one', async () => {
    const r = await kvs(['server', '--id', '1', '--listen', '127.0.0.1:25199', '--data', join(cwd, 'r'), '--replicas', '1=127.0.0.1:25199'], { env: { ...process.env, KVS_TICKMS: '5' } });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown environment variable KVS_TICKMS \(did you mean KVS_TICK_MS\?\)/);
  });
});

describe('jsonBytes', () => {
  it('keeps a byte order mark and rejects overlong or truncated UTF-8', () => {
    assert.deepEqual(jsonBytes('v', Buffer.from([0xef, 0xbb, 0xbf, 0x41])), { v: '\ufeffA' });
    assert.deepEqual(jsonBytes('v', Buffer.from([0xc0, 0xaf])), { vBase64: 'wK8=' });
    assert.deepEqual(jsonBytes('v', Buffer.from([0xe2, 0x82])), { vBase64: '4oI=' });
    assert.deepEqual(jsonBytes('v', new Uint8Array(0)), { v: '' });
  });
});
