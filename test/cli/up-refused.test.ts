// `kvs up` when its replicas refuse their configuration: it stops the cluster and exits with a
// clear message. Regression: a refusal before the shard groups were launched hit the control
// socket before it existed, and kvs up died of a ReferenceError instead.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
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
