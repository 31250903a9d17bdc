// A request's time bound covers its connect (found in review, 2026-12-07): the connect's time was
// not taken off the request's wait, so one attempt could take about twice its bound, and a request
// that joined another request's connect waited on that one's (longer) bound.
import assert from 'node:assert/strict';
import net from 'node:net';
import { Duplex } from 'node:stream';
import { afterEach, describe, it, mock } from 'node:test';
import { Connection, ConnectionError } from '../../src/cluster/connection.ts';

/** Sockets that connect after `connectMs` (never: undefined) and never answer. */
function slowConnects(connectMs: number | undefined): void {
  mock.method(net, 'connect', () => {
    const d = new Duplex({
      read() {},
      write(_chunk, _enc, cb) {
        cb();
      },
    });
    if (connectMs !== undefined) setTimeout(() => d.emit('connect'), connectMs);
    return d;
  });
}

/** Lets the callbacks of fired timers and the promises they settle run. */
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

// The clock is mocked (setTimeout and Date): what is asserted is when, on the requests' own clock,
// a request fails, which a loaded machine's late timers cannot change.
describe('a request to a replica that is slow to connect', () => {
  afterEach(() => {
    mock.timers.reset();
    mock.restoreAll();
  });

  it('fails within its own bound, the connect included', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    slowConnects(700);
    const c = new Connection('127.0.0.1:1');
    const out: { failed?: unknown } = {};
    const call = c.call(() => Buffer.alloc(9), 800).catch((e: unknown) => void (out.failed = e));
    mock.timers.tick(700); // connected
    await settle();
    assert.equal(out.failed as unknown, undefined, 'still within its bound'); // (as unknown: no narrowing for the check below)
    mock.timers.tick(100); // 800 ms in all
    await settle();
    // Before: 700 ms to connect, then a full 800 ms wait for the answer (1500 ms).
    assert.ok(out.failed instanceof ConnectionError, `failed at its 800 ms bound: ${String(out.failed)}`);
    await call;
    c.close();
  });

  it('joining a connect already under way, waits no longer than its own bound', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    slowConnects(undefined);
    const c = new Connection('127.0.0.1:1');
    const first = c.call(() => Buffer.alloc(9), 5000);
    first.catch(() => {});
    const out: { failed?: unknown } = {};
    const second = c.call(() => Buffer.alloc(9), 300).catch((e: unknown) => void (out.failed = e));
    mock.timers.tick(300);
    await settle();
    // Before: it waited on the first request's connect, bounded at 5000 ms.
    assert.ok(out.failed instanceof ConnectionError && !out.failed.sent, `failed, not sent, at its 300 ms bound (the other request's is 5000 ms): ${String(out.failed)}`);
    await second;
    c.close();
    await assert.rejects(first, ConnectionError);
  });
});
