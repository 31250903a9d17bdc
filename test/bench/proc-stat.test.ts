// The bench's CPU window counts each process once: replicas hosted in one process (kvs up's
// default layout) list the same pid in cluster.json, and summing it per replica overstated the
// servers' CPU several times over.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CpuWindow } from '../../bench/load/proc-stat.ts';

describe('CpuWindow', () => {
  it('counts a pid listed several times once', () => {
    const w = new CpuWindow([process.pid, process.pid, process.pid]);
    w.start();
    const until = performance.now() + 150;
    let x = 0;
    while (performance.now() < until) x += Math.sqrt(x + 1);
    const r = w.stop();
    assert.ok(x > 0);
    assert.deepEqual(Object.keys(r.perPid), [String(process.pid)]);
    assert.ok(r.pids > 0, 'the busy loop used CPU');
    assert.equal(r.pids, r.perPid[process.pid]);
  });
});
