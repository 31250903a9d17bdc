// A replica that leaves attempts unanswered is tried last for a while, and for longer each time in
// a row (a partition), so callers stop paying a whole attempt for it every few seconds; one answer
// puts it back in line. Regression (outside chaos run): with a fixed 2 s hold, reads through a
// door whose first-listed replica of a group was cut off stalled ~1.5 s every 3.5 s.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, it, mock } from 'node:test';
import { Responsiveness } from '../../src/cluster/responsiveness.ts';

beforeEach(() => mock.timers.enable({ apis: ['Date'], now: 1_000_000 }));
afterEach(() => mock.timers.reset());

/** How long `addr` stays at the back after its latest miss. */
function heldFor(r: Responsiveness, addr: string): number {
  let ms = 0;
  while (r.isQuiet(addr)) {
    mock.timers.tick(100);
    ms += 100;
  }
  return ms;
}

it('the hold doubles while a replica keeps missing, up to 16 s, and an answer resets it', () => {
  const r = new Responsiveness(1500);
  const holds: number[] = [];
  for (let i = 0; i < 6; i++) {
    r.unanswered('a:1');
    holds.push(heldFor(r, 'a:1'));
  }
  assert.deepEqual(holds, [2000, 4000, 8000, 16000, 16000, 16000]);
  r.answered('a:1');
  assert.equal(r.isQuiet('a:1'), false);
  r.unanswered('a:1');
  assert.equal(heldFor(r, 'a:1'), 2000, 'back to the first hold after an answer');
});

it('responsiveFirst keeps the order and moves held replicas to the end', () => {
  const r = new Responsiveness(1500);
  r.unanswered('a:1');
  assert.deepEqual(r.responsiveFirst(['a:1', 'b:2', 'c:3']), ['b:2', 'c:3', 'a:1']);
  mock.timers.tick(2000);
  assert.deepEqual(r.responsiveFirst(['a:1', 'b:2', 'c:3']), ['a:1', 'b:2', 'c:3']);
});
