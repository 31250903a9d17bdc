// The benchmark report's arithmetic: target ratios are paired within a repetition and reported as
// the median; a CPU profile's self time is split by function and area, inside a time window.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { computeTargets } from '../../bench/compare/targets.ts';
import { summarizeProfile, type CpuProfile } from '../../bench/report/cpuprofile.ts';
import { summarize } from '../../bench/report/summarize.ts';

const line = (cell: string, rep: number, ops: number, p99 = 10) => ({ bench: 'load', cell, rep, system: cell.split('/')[1]!, workload: 'write', dist: 'uniform', loop: 'closed', inflight: 64, ops_per_s: ops, p50_ms: 1, p99_ms: p99 });

describe('computeTargets', () => {
  it('takes the median of per-repetition ratios and checks p99', () => {
    const lines = [
      line('load/kvs/write/uniform', 0, 600, 5),
      line('load/etcd/write/uniform', 0, 100, 20),
      line('load/kvs/write/uniform', 1, 100, 5), // a disturbed repetition: ratio 0.5
      line('load/etcd/write/uniform', 1, 200, 20),
      line('load/kvs/write/uniform', 2, 1400, 5),
      line('load/etcd/write/uniform', 2, 200, 20),
    ];
    const [w, r] = computeTargets(lines, 3);
    assert.equal(w!.ratio, 6); // ratios 6, 0.5, 7 → median 6 (the ratio of medians would be 3)
    assert.equal(w!.met, true);
    assert.equal(Number.isNaN(r!.ratio), true); // not measured
    assert.equal(r!.met, false);
    const worseP99 = lines.map((l) => (l.system === 'kvs' ? { ...l, p99_ms: 50 } : l));
    assert.equal(computeTargets(worseP99, 3)[0]!.met, false);
  });

  it('summarizes repetitions with medians and the spread', () => {
    const row = summarize('c', [line('c', 0, 100), line('c', 1, 300), line('c', 2, 200)]);
    assert.equal(row.ops, 200);
    assert.equal(row.opsMin, 100);
    assert.equal(row.opsMax, 300);
    assert.equal(row.generator, 'kvs bench, 64 in flight');
  });
});

describe('summarizeProfile', () => {
  // root → a (src/raft) → writeBuffer (native); root → (idle); samples 1 ms apart from t = 1000 µs.
  const profile: CpuProfile = {
    nodes: [
      { id: 1, callFrame: { functionName: '(root)', url: '', lineNumber: -1 }, children: [2, 4] },
      { id: 2, callFrame: { functionName: 'step', url: 'file:///repo/src/raft/node.ts', lineNumber: 0 }, children: [3] },
      { id: 3, callFrame: { functionName: 'writeBuffer', url: '', lineNumber: -1 } },
      { id: 4, callFrame: { functionName: '(idle)', url: '', lineNumber: -1 } },
    ],
    startTime: 0,
    endTime: 10_000,
    samples: [2, 3, 3, 4, 2, 2, 4, 3, 2, 4],
    timeDeltas: [1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000],
  };

  it('splits busy time by function and area, and names native functions\' callers', () => {
    const s = summarizeProfile(profile, '/repo');
    assert.equal(s.busyMs, 7);
    assert.deepEqual(s.functions.map((f) => [f.name, f.ms]), [['step src/raft/node.ts', 4], ['writeBuffer', 3]]);
    assert.deepEqual(s.areas.map((a) => a.name), ['src/raft', 'native built-ins']);
    assert.deepEqual(s.callers[0]!.from.map((f) => f.name), ['step src/raft/node.ts']);
  });

  it('keeps only the samples inside a window', () => {
    const s = summarizeProfile(profile, '/repo', 25, [4500, 8500]); // samples at t = 5, 6, 7, 8 ms
    assert.equal(s.busyMs, 3);
    assert.equal(s.wallMs, 4);
  });
});
