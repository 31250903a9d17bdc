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

describe('a request to a replica that is slow to connect', () => {
  afterEach(() => mock.restoreAll());

  it('fails within its own bound, the connect included', async () => {
    slowConnects(700);
    const c = new Connection('127.0.0.1:1');
    const started = Date.now();
    await assert.rejects(c.call(() => Buffer.alloc(9), 800), ConnectionError);
    const took = Date.now() - started;
    // Before: 700 ms to connect, then a full 800 ms wait for the answer (1500 ms).
    assert.ok(took < 1300, `took ${took} ms of an 800 ms bound`);
    c.close();
  });

  it('joining a connect already under way, waits no longer than its own bound', async () => {
    slowConnects(undefined);
    const c = new Connection('127.0.0.1:1');
    const first = c.call(() => Buffer.alloc(9), 5000);
    first.catch(() => {});
    const started = Date.now();
    await assert.rejects(c.call(() => Buffer.alloc(9), 300), (e: unknown) => e instanceof ConnectionError && !e.sent);
    const took = Date.now() - started;
    assert.ok(took < 2500, `took ${took} ms of a 300 ms bound (the other request's is 5000 ms)`);
    c.close();
    await assert.rejects(first, ConnectionError);
  });
});
