// make bench-floor's parts keep working: the C sources compile warning-free, and each floor chain
// (C inline, C threads, Node async, Node sync) answers every request of its client exactly once —
// client.c fails on a missing, unknown or repeated answer. Counts only, no timing thresholds.
// Ports 24600–24611 on 127.0.0.1.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { compileFloor, preZero, runFloor } from '../../bench/floor.ts';

const HAVE_GCC = (() => {
  try {
    execFileSync('gcc', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('bench-floor chains', { skip: HAVE_GCC ? false : 'gcc is not installed (.ci/deps test installs it)', timeout: 180_000 }, () => {
  let dir: string;
  let bins: { replica: string; client: string };
  let files: string[];
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kvs-floor-test-'));
    bins = compileFloor(dir);
    files = preZero(dir, 16 << 20);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const impls = ['C inline', 'C threads', 'Node async', 'Node sync'] as const;
  impls.forEach((impl, i) => {
    it(`${impl}: every request answered once, open and closed loop`, async () => {
      const open = await runFloor(impl, bins, files, dir, 24600 + i * 3, { name: 'open', loop: 'open', load: 200, warmupS: 0.2, measureS: 1 });
      assert.ok(Number(open.completed) > 0, JSON.stringify(open));
      assert.equal(open.answered, open.sent);
      const closed = await runFloor(impl, bins, files, dir, 24600 + i * 3, { name: 'closed', loop: 'closed', load: 8, warmupS: 0.2, measureS: 0.5 });
      assert.ok(Number(closed.completed) > 0, JSON.stringify(closed));
      assert.equal(closed.answered, closed.sent);
    });
  });
});
