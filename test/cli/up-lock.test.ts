// One `kvs up` per data directory. An outside test started a second one beside a running cluster:
// it unpublished the first's cluster.json, took its control socket, printed "ready" answered by
// the first one's ports, and left the first unmanageable (kvs replica/reshard failed against it).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, it } from 'node:test';

const BIN = resolve(import.meta.dirname, '../../bin/kvs.js');
const data = mkdtempSync(join(tmpdir(), 'kvs-up-lock-'));
after(() => rmSync(data, { recursive: true, force: true }));
const up = (...args: string[]) => spawnSync(process.execPath, [BIN, 'up', '--data', data, ...args], { encoding: 'utf8', timeout: 60_000 });

it('refuses to run beside a live kvs up of the same data directory, and takes over a dead one\'s lock', () => {
  const lock = join(data, 'up.pid');
  writeFileSync(join(data, 'cluster.json'), '[]'); // the running cluster's file: must stay published
  writeFileSync(lock, `${process.pid}\n`); // a live process holds it
  const second = up();
  assert.equal(second.status, 2, second.stdout + second.stderr);
  assert.match(second.stderr, new RegExp(`another "kvs up" \\(pid ${process.pid}\\) runs the cluster in`));
  assert.equal(readFileSync(lock, 'utf8').trim(), String(process.pid), 'the running one keeps its lock');
  assert.ok(existsSync(join(data, 'cluster.json')), 'the running cluster stays published');

  // A kvs up killed with -9 left its pid behind: the next one takes the lock (and here stops at a
  // cluster file it cannot read, giving the lock back). Bad flags are refused before the lock.
  const dead = spawnSync(process.execPath, ['-e', 'process.pid'], { encoding: 'utf8' }).pid!;
  writeFileSync(lock, `${dead}\n`);
  writeFileSync(join(data, 'cluster.json'), 'not a cluster file');
  const next = up();
  assert.equal(next.status, 3, next.stderr);
  assert.match(next.stderr, /cluster\.json is not a cluster file/);
  assert.equal(existsSync(lock), false, 'released at exit');
});
