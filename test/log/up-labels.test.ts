// `kvs up` and its replicas' log lines: in text mode each replica's stderr line is labelled
// [placement/r1] or [shard-1/r<id>]; in json mode the lines pass through as JSON objects that name
// their group and replica. A placement replica and one shard replica, on ports 29100-29401.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { reapOnExit } from '../support/processes.ts';
import { waitFor } from '../support/wait.ts';

const BIN = resolve(import.meta.dirname, '../../bin/kvs.js');

async function upLines(format: 'text' | 'json'): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'kvs-up-log-'));
  const child = reapOnExit(spawn(process.execPath, [BIN, 'up', '--shards', '1', '--replicas', '1', '--base-port', '29100', '--data', dir, '--log-format', format], { stdio: ['ignore', 'ignore', 'pipe'] }));
  let err = '';
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  try {
    // Both replicas have said where they listen.
    await waitFor('both replicas listening', () => (err.split('\n').filter((l) => l.includes('listening')).length >= 2 ? true : undefined), 60_000);
  } finally {
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await gone;
    rmSync(dir, { recursive: true, force: true });
  }
  return err.split('\n').filter((l) => l !== '' && !l.startsWith('kvs up:'));
}

describe('kvs up: replica log lines', () => {
  it('text: every replica line is labelled with its group and replica', async () => {
    const lines = await upLines('text');
    for (const l of lines) assert.match(l, /^\[(placement\/r1|shard-1\/r\d+)\] \d{4}-\S+Z (INFO |WARN |ERROR|DEBUG) g\d+ r\d+ /, l);
    assert.ok(lines.some((l) => /^\[placement\/r1\] .* g0 r1 listening/.test(l)));
    assert.ok(lines.some((l) => /^\[shard-1\/r(\d+)\] .* g1 r\1 listening/.test(l)));
  });

  it('json: the lines pass through unlabelled, each naming group and replica', async () => {
    const lines = await upLines('json');
    const objects = lines.map((l) => JSON.parse(l) as { group: number; replica: number; msg: string });
    assert.ok(objects.some((o) => o.group === 0 && o.replica === 1 && o.msg === 'listening'));
    assert.ok(objects.some((o) => o.group === 1 && o.msg === 'listening'));
  });
});
