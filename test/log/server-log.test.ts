// What a replica writes on stderr: every line one JSON object (stderr is a pipe here) naming its
// group and replica, or with --log-format text one line per event with g/r; SIGTERM is logged.
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, describe, it } from 'node:test';
import { childLabel, labelLines } from '../../src/log/child-lines.ts';
import { TestCluster } from '../server/cluster.ts';

describe('replica log lines', () => {
  const clusters: TestCluster[] = [];
  after(async () => {
    for (const c of clusters) await c.stop();
  });

  it('json by default on a pipe: ts, level, group, replica, msg on every line; the leader and SIGTERM are in it', async () => {
    const cluster = await TestCluster.start({ basePort: 27600 });
    clusters.push(cluster);
    const leader = await cluster.waitForLeader();
    for (const id of cluster.ids) await cluster.kill(id, 'SIGTERM');
    for (const id of cluster.ids) {
      const text = (cluster.logs.get(id) ?? []).join('');
      assert.ok(text.endsWith('\n'), `replica ${id}: whole lines`);
      const lines = text.slice(0, -1).split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      for (const l of lines) {
        assert.match(String(l.ts), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
        assert.ok(['debug', 'info', 'warn', 'error'].includes(String(l.level)));
        assert.equal(l.group, 0);
        assert.equal(l.replica, id);
        assert.equal(typeof l.msg, 'string');
      }
      const listening = lines.find((l) => l.msg === 'listening');
      assert.deepEqual((listening?.endpoints as Record<string, string>).native, cluster.address(id));
      assert.ok(lines.some((l) => l.msg === 'shutting down' && l.signal === 'SIGTERM'), `replica ${id} logs SIGTERM`);
      if (id === leader.replicaId) assert.ok(lines.some((l) => l.msg === 'raft state changed' && l.role === 'leader' && l.term === leader.term));
    }
  });

  it('--log-format text: time, level, g0 r<id>, message and fields', async () => {
    const cluster = await TestCluster.start({ basePort: 27610, args: ['--log-format', 'text'] });
    clusters.push(cluster);
    for (const id of cluster.ids) await cluster.kill(id, 'SIGTERM');
    for (const id of cluster.ids) {
      const lines = (cluster.logs.get(id) ?? []).join('').trimEnd().split('\n');
      assert.ok(lines.length >= 2);
      for (const l of lines) assert.match(l, new RegExp(`^\\d{4}-\\S+Z (INFO |WARN |ERROR|DEBUG) g0 r${id} \\S`));
      assert.ok(lines.some((l) => / shutting down signal=SIGTERM$/.test(l)));
    }
  });

  it('--log-level warn drops the info lines', async () => {
    const cluster = await TestCluster.start({ basePort: 27620, args: ['--log-level', 'warn'] });
    clusters.push(cluster);
    for (const id of cluster.ids) await cluster.kill(id, 'SIGTERM');
    for (const id of cluster.ids) {
      const text = (cluster.logs.get(id) ?? []).join('');
      for (const l of text.split('\n').filter((x) => x !== '')) assert.notEqual(JSON.parse(l).level, 'info');
    }
  });
});

describe('kvs up child labels', () => {
  it('placement/r<id> and shard-<group>/r<id>', () => {
    assert.equal(childLabel('placement', 0, 2), 'placement/r2');
    assert.equal(childLabel('shard', 1, 102), 'shard-1/r102');
  });

  it('prefixes every line, whatever the chunking, and flushes a last line without newline', async () => {
    const from = new PassThrough();
    let out = '';
    labelLines(from, 'shard-1/r102', (l) => (out += l));
    for (const chunk of ['a li', 'ne\nsecond\nthi', 'rd\n\nla', 'st']) from.write(chunk);
    from.end();
    await new Promise((r) => from.on('end', r));
    assert.equal(out, '[shard-1/r102] a line\n[shard-1/r102] second\n[shard-1/r102] third\n[shard-1/r102] \n[shard-1/r102] last\n');
  });
});
