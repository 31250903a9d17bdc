// every(): one timer per period per process, firing on wall-clock multiples of the period, so
// periods that divide one another fire in the same wake-up. Driven by mocked timers and clock.
import assert from 'node:assert/strict';
import { mock, test } from 'node:test';
import { Pacer, every } from '../../src/timers/every.ts';

/** Advances the mocked clock a millisecond at a time, so each timer sees its own due time. */
function advance(ms: number): void {
  for (let i = 0; i < ms; i++) mock.timers.tick(1);
}

test('periods fire on multiples of themselves, together when one divides the other', () => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1005 });
  try {
    const seen: string[] = [];
    const at = (name: string) => () => void seen.push(`${name}@${Date.now()}`);
    const stop50 = every(50, at('50'));
    const stop100 = every(100, at('100'));
    const stop50b = every(50, at('50b'));
    advance(1201 - 1005);
    // Within one instant the order is the timers' own; what matters is which ones share it.
    assert.deepEqual(seen.sort(), ['100@1100', '100@1200', '50@1050', '50@1100', '50@1150', '50@1200', '50b@1050', '50b@1100', '50b@1150', '50b@1200']);
    stop50();
    seen.length = 0;
    advance(100);
    assert.deepEqual(seen.sort(), ['100@1300', '50b@1250', '50b@1300'], 'a stopped caller leaves the others');
    stop50b();
    stop100();
    seen.length = 0;
    advance(500);
    assert.deepEqual(seen, [], 'all stopped: nothing fires');
  } finally {
    mock.timers.reset();
  }
});

test('a late wake-up skips the beats it missed instead of firing them in a burst', () => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
  try {
    const seen: number[] = [];
    const stop = every(10, () => {
      seen.push(Date.now());
      if (Date.now() === 10) mock.timers.setTime(47); // this callback took 37 ms
    });
    while (Date.now() < 61) mock.timers.tick(1);
    stop();
    assert.deepEqual(seen, [10, 50, 60]);
  } finally {
    mock.timers.reset();
  }
});

test('a period below 1 ms is refused', () => {
  assert.throws(() => every(0, () => {}), RangeError);
});

test('a Pacer moves its call between periods and stops for good', () => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
  try {
    const seen: number[] = [];
    const p = new Pacer(() => void seen.push(Date.now()));
    p.pace(10);
    p.pace(10); // already there: no second timer
    while (Date.now() < 25) mock.timers.tick(1);
    p.pace(50);
    while (Date.now() < 120) mock.timers.tick(1);
    p.stop();
    p.pace(10); // stopped: stays stopped
    while (Date.now() < 200) mock.timers.tick(1);
    assert.deepEqual(seen, [10, 20, 50, 100]);
    assert.equal(p.ms, 50);
  } finally {
    mock.timers.reset();
  }
});
