import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { progress } from '../../src/cli/progress.ts';

function run(isTTY: boolean, steps: [number, number, number][]): string {
  let out = '';
  let t = 0;
  const p = progress({ isTTY, write: (s) => (out += s), what: 'partitions moved', now: () => t });
  for (const [at, done, total] of steps) {
    t = at;
    p.update(done, total);
  }
  p.finish();
  return out;
}

describe('reshard progress', () => {
  it('on a terminal: a bar redrawn with \\r, one newline at the end', () => {
    const out = run(true, [[0, 0, 4], [200, 2, 4], [400, 4, 4]]);
    assert.equal(out, `\r[${' '.repeat(30)}] 0/4 partitions moved\r[${'#'.repeat(15)}${' '.repeat(15)}] 2/4 partitions moved\r[${'#'.repeat(30)}] 4/4 partitions moved\n`);
  });

  it('elsewhere: no \\r, one plain line per change at most once a second, and always the last count', () => {
    const out = run(false, [[0, 0, 10], [200, 0, 10], [400, 3, 10], [1100, 5, 10], [1300, 6, 10], [1500, 10, 10], [1700, 10, 10]]);
    assert.ok(!out.includes('\r'));
    assert.equal(out, '0/10 partitions moved\n5/10 partitions moved\n10/10 partitions moved\n');
  });

  it('elsewhere: a count held back by the rate limit is printed by finish', () => {
    assert.equal(run(false, [[0, 1, 9], [10, 4, 9]]), '1/9 partitions moved\n4/9 partitions moved\n');
    assert.equal(run(false, []), '');
  });
});
