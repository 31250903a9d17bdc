// The process/runtime series and kvs_build_info on /metrics: accepted by `promtool check metrics`
// (Prometheus's own linter), and values that agree with what the process says about itself.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ServerMetrics, type MetricSources } from '../../src/server/metrics.ts';
import { buildInfo, gitHead, maxFds } from '../../src/server/runtime-metrics.ts';
import { LoopLag } from '../../src/server/loop-lag.ts';
import { systemEnv } from '../../src/replica/env.ts';
import { parsePrometheus, sampleValue } from '../doors/prom-parse.ts';
import { waitFor } from '../support/wait.ts';

const sources: MetricSources = {
  raft: () => ({ role: 'leader', term: 3, leader: 1, quiet: false, blank: false, commit: 10, applied: 10, firstIndex: 1, lastIndex: 10, progress: [{ id: 2, match: 9, next: 11 }] }),
  replicaStats: () => ({ leaderChanges: 1, readies: 5, applied: 10, persisted: 10, readsJoined: 0 }),
  routerStats: () => ({ forwarded: 0, proposed: 10, reads: 2, staleReads: 0 }),
  peers: () => [{ id: 2, connected: true, framesSent: 7, dropped: 0 }],
  keys: () => 4,
  storageBytes: () => 4096,
};

function value(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  return sampleValue(parsePrometheus(text), name, labels);
}

describe('runtime metrics', () => {
  // As the server does with its Raft tick: a periodic timer feeds the lag (here every 10 ms).
  const lag = new LoopLag();
  const metrics = new ServerMetrics(sources, lag);
  const stopProbe = systemEnv.every(10, lag.timed(10, () => {}));
  after(() => {
    stopProbe();
    metrics.close();
  });

  it('promtool check metrics accepts the whole exposition', () => {
    metrics.observeRequest('http', 'get', 0.001, 'ok');
    const r = spawnSync('promtool', ['check', 'metrics'], { input: metrics.render(), encoding: 'utf8' });
    assert.equal(r.error, undefined, 'promtool must be installed (Debian package prometheus)');
    assert.equal(r.status, 0, `promtool: ${r.stdout}${r.stderr}`);
  });

  it('process series agree with the process', () => {
    const text = metrics.render();
    const cpu = value(text, 'process_cpu_seconds_total')!;
    const u = process.cpuUsage();
    assert.ok(cpu > 0 && cpu <= (u.user + u.system) / 1e6, `cpu ${cpu}`);
    const rss = value(text, 'process_resident_memory_bytes')!;
    assert.ok(rss > 10e6 && rss < 24e9, `rss ${rss}`);
    const start = value(text, 'process_start_time_seconds')!;
    assert.ok(Math.abs(start - (Date.now() / 1000 - process.uptime())) <= 1, `start ${start}`);
    const open = value(text, 'process_open_fds')!;
    const max = value(text, 'process_max_fds')!;
    assert.ok(open >= 3 && open < max, `fds ${open}/${max}`);
    assert.equal(max, maxFds());
    const heapUsed = value(text, 'nodejs_heap_size_used_bytes')!;
    assert.ok(heapUsed > 0 && heapUsed <= value(text, 'nodejs_heap_size_total_bytes')!);
    assert.ok(value(text, 'nodejs_heap_space_size_used_bytes', { space: 'old' })! > 0);
  });

  it('open fds follow files opened', async () => {
    const { openSync, closeSync } = await import('node:fs');
    const before = value(metrics.render(), 'process_open_fds')!;
    const fds = Array.from({ length: 20 }, () => openSync('/dev/null', 'r'));
    const during = value(metrics.render(), 'process_open_fds')!;
    for (const fd of fds) closeSync(fd);
    assert.ok(during - before >= 20 - 2, `${before} → ${during}`); // others may open/close meanwhile
  });

  it('GC pauses are counted by kind', async () => {
    let junk: unknown[] = [];
    await waitFor('a minor GC', () => {
      for (let i = 0; i < 200_000; i++) junk.push({ i });
      junk = [];
      return (value(metrics.render(), 'nodejs_gc_duration_seconds_count', { kind: 'minor' }) ?? 0) > 0;
    }, 30_000);
    const text = metrics.render();
    assert.ok(value(text, 'nodejs_gc_duration_seconds_sum', { kind: 'minor' })! > 0);
  });

  it('event-loop lag shows a blocked loop, and covers one scrape interval', async () => {
    metrics.render(); // resets
    await new Promise((r) => setTimeout(r, 50));
    const t0 = Date.now();
    while (Date.now() - t0 < 300); // block the loop for 300 ms
    await new Promise((r) => setTimeout(r, 50));
    const text = metrics.render();
    const max = value(text, 'nodejs_eventloop_lag_max_seconds')!;
    assert.ok(max >= 0.25, `max lag ${max}`);
    assert.ok(value(text, 'nodejs_eventloop_lag_p50_seconds')! <= max);
    assert.ok(value(text, 'nodejs_eventloop_lag_mean_seconds')! <= max);
    // A scrape resets the histogram: one right after (no loop turn between) reports no delay at all.
    assert.equal(value(metrics.render(), 'nodejs_eventloop_lag_max_seconds'), 0, 'the blocked interval is not reported twice');
  });

  it('kvs_build_info: version, commit, node, value 1', () => {
    const text = metrics.render();
    const s = parsePrometheus(text).samples.find((x) => x.name === 'kvs_build_info')!;
    assert.equal(s.value, 1);
    assert.equal(s.labels.node, process.version);
    assert.equal(s.labels.version, buildInfo().version);
    assert.match(s.labels.version!, /^\d+\.\d+\.\d+/);
    assert.equal(s.labels.commit, buildInfo().commit);
  });
});

describe('build info sources', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvs-build-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const sha = 'a'.repeat(40);

  it('the commit from KVS_BUILD_COMMIT, else .git (loose ref, packed ref, detached, worktree), else unknown', () => {
    writeFileSync(join(dir, 'package.json'), '{"version":"1.2.3"}');
    assert.deepEqual(buildInfo(dir, {}), { version: '1.2.3', commit: 'unknown', node: process.version });
    assert.equal(buildInfo(dir, { KVS_BUILD_COMMIT: 'abc' }).commit, 'abc');
    mkdirSync(join(dir, '.git/refs/heads'), { recursive: true });
    writeFileSync(join(dir, '.git/HEAD'), 'ref: refs/heads/main\n');
    writeFileSync(join(dir, '.git/packed-refs'), `# pack-refs\n${'b'.repeat(40)} refs/heads/main\n`);
    assert.equal(gitHead(dir), 'b'.repeat(40));
    writeFileSync(join(dir, '.git/refs/heads/main'), `${sha}\n`);
    assert.equal(gitHead(dir), sha);
    const wt = join(dir, 'wt');
    mkdirSync(join(dir, '.git/worktrees/wt'), { recursive: true });
    mkdirSync(wt);
    writeFileSync(join(wt, '.git'), `gitdir: ${join(dir, '.git/worktrees/wt')}\n`);
    writeFileSync(join(dir, '.git/worktrees/wt/HEAD'), 'ref: refs/heads/main\n');
    writeFileSync(join(dir, '.git/worktrees/wt/commondir'), '../..\n');
    assert.equal(gitHead(wt), sha);
    writeFileSync(join(dir, '.git/HEAD'), `${'c'.repeat(40)}\n`);
    assert.equal(gitHead(dir), 'c'.repeat(40));
    assert.equal(buildInfo(join(dir, 'nowhere'), {}).version, 'unknown');
  });

  it('max fds from /proc/self/limits text', () => {
    assert.equal(maxFds('Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n'), 1024);
    assert.equal(maxFds('Max open files            unlimited            unlimited            files\n'), undefined);
  });
});
