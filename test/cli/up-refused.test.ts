// `kvs up` when its replicas refuse their configuration: it stops the cluster and exits with a
// clear message; and `kvs up` refusing a bad flag before it touches the disk. Regression: a refusal before the shard groups were launched hit the control
// socket before it existed, and kvs up died of a ReferenceError instead.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';

const BIN = resolve(import.meta.dirname, '../../bin/kvs.js');
const BASE_PORT = 29901;

describe('kvs up with replicas that refuse their configuration', () => {
  const data = mkdtempSync(join(tmpdir(), 'kvs-up-refused-'));
  after(() => rmSync(data, { recursive: true, force: true }));

  it('stops the cluster and exits 3, saying which replica refused', async () => {
    // An unknown KVS_* variable makes every replica exit 2 (usage error) at start.
    const up = spawn(process.execPath, [BIN, 'up', '--data', data, '--base-port', String(BASE_PORT), '--log-format', 'json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, KVS_NOT_A_SETTING: '1' },
    });
    let stderr = '';
    up.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    up.stdout.resume();
    const timer = setTimeout(() => up.kill('SIGKILL'), 120_000);
    const code = await new Promise<number | null>((res) => up.on('exit', (c) => res(c)));
    clearTimeout(timer);
    assert.match(stderr, /unknown environment variable KVS_NOT_A_SETTING/);
    assert.match(stderr, /replica \d+ rejected its configuration; stopping the cluster/);
    assert.doesNotMatch(stderr, /ReferenceError|before initialization/);
    assert.equal(code, 3, stderr);
  });
});

// An outside test: `kvs up` with a bad flag created the data directory before refusing it (and with
// an existing cluster, unpublished its cluster.json first).
describe('kvs up with a bad flag', () => {
  const root = mkdtempSync(join(tmpdir(), 'kvs-up-flags-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  const up = (args: string[]): { status: number | null; stderr: string } => {
    const r = spawnSync(process.execPath, [BIN, 'up', ...args], { encoding: 'utf8', timeout: 60_000 });
    return { status: r.status, stderr: r.stderr };
  };

  it('refuses it before touching the disk', () => {
    const bad: [string[], RegExp][] = [
      [['--replicas', '0'], /--replicas must be/],
      [['--processes', '0'], /--processes must be/],
      [['--shards', 'x'], /--shards must be/],
      [['--base-port', '80'], /--base-port must/],
      [['--log-format', 'xml'], /--log-format must be/],
    ];
    for (const [args, message] of bad) {
      const dir = join(root, 'new');
      const r = up(['--data', dir, ...args]);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(existsSync(dir), false, `${args.join(' ')}: no data directory left behind`);
    }
    // An existing cluster's directory is left as it was: cluster.json stays published, no lock file.
    const dir = join(root, 'old');
    mkdirSync(dir);
    const cluster = `${JSON.stringify({ replicas: [{ id: 1, group: 0, role: 'placement', pid: 0, dataDir: join(dir, 'r1'), endpoints: { native: '127.0.0.1:29990' } }] })}\n`;
    writeFileSync(join(dir, 'cluster.json'), cluster);
    const r = up(['--data', dir, '--processes', '0']);
    assert.equal(r.status, 2, r.stderr);
    assert.deepEqual(readdirSync(dir), ['cluster.json']);
    assert.equal(readFileSync(join(dir, 'cluster.json'), 'utf8'), cluster);
  });
});
