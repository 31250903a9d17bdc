// `kvs replica remove --group G --id N` on a `kvs up` cluster: a replica of another group, or none,
// is refused before anything changes. An outside test: `--group 1 --id 201` answered "removed from
// group 1 and stopped" (the group's leader takes the removal of a non-member for a retried one,
// and kvs up stopped replica 201 of group 2 by its id); a second slip left group 2 without a leader
// for good, as kvs up no longer launched the replicas it had stopped.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, it } from 'node:test';
import { writeCluster } from '../../src/cli/cluster-file.ts';
import { shardedLayout } from '../../src/cli/layout.ts';

const BIN = resolve(import.meta.dirname, '../../bin/kvs.js');
const dir = mkdtempSync(join(tmpdir(), 'kvs-replica-remove-'));
after(() => rmSync(dir, { recursive: true, force: true }));

it('refuses a replica of another group, or one the cluster does not have, with a usage error', () => {
  // A cluster file as kvs up writes it; nothing listens at its addresses (nothing may be asked).
  writeCluster(dir, shardedLayout(dir, 39001, 3, 3));
  const remove = (group: number, id: number) => spawnSync(process.execPath, [BIN, 'replica', 'remove', '--group', String(group), '--id', String(id), '--data', dir, '--timeout-ms', '2000'], { encoding: 'utf8' });
  const other = remove(1, 201);
  assert.equal(other.status, 2, other.stdout + other.stderr);
  assert.match(other.stderr, /replica 201 is a replica of shard group 2, not 1/);
  const none = remove(1, 999);
  assert.equal(none.status, 2, none.stdout + none.stderr);
  assert.match(none.stderr, /no replica 999 in the cluster/);
});

// Found next to an outside test's findings: a malformed --address or --placement went to the
// cluster (the group's leader refused the address: exit 3), and an overlong --timeout-ms made
// every wait end at once (setTimeout takes at most 2^31-1 ms).
it('refuses a malformed address or an overlong timeout with a usage error, before asking the cluster', () => {
  const replica = (...args: string[]) => spawnSync(process.execPath, [BIN, 'replica', ...args], { encoding: 'utf8', timeout: 30_000 });
  const dead = ['--placement', '127.0.0.1:1'];
  for (const [args, message] of [
    [['add', '--group', '1', '--id', '7', '--address', 'foo', ...dead], /--address: .*host:port/],
    [['add', '--group', '1', '--id', '7', '--address', '127.0.0.1:99999', ...dead], /--address: /],
    [['remove', '--group', '1', '--id', '7', '--placement', 'nohost'], /--placement: .*host:port/],
    [['remove', '--group', '1', '--id', '7', '--timeout-ms', '3000000000', ...dead], /--timeout-ms must be a positive integer, at most 2147483647/],
  ] as const) {
    const r = replica(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, message);
  }
});
