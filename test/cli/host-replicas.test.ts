// A `kvs host` replica whose onFatal fired while KvsServer.start was still running was reported
// `exited`, then recorded as running and reported `started` as well; kvs up's restart command was
// then ignored (the id was still recorded) and the replica never came back. host-replicas.ts keeps
// one state per start: these drive it with fake servers whose start waits until the test says.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HostReplicas, type HostedServer, type StartServer } from '../../src/cli/host-replicas.ts';
import type { HostReport } from '../../src/cli/host-protocol.ts';

class FakeServer implements HostedServer {
  closed = 0;
  shutdowns = 0;
  replica = { transferLeadership: (): boolean => true };
  close(): Promise<void> {
    this.closed++;
    return Promise.resolve();
  }
  shutdown(): Promise<void> {
    this.shutdowns++;
    return this.close();
  }
}

/** A start that waits for `finish()`; `fatal()` fires the replica's onFatal meanwhile. */
function pendingStart(): { start: StartServer; server: FakeServer; fatal: () => void; finish: () => void } {
  const server = new FakeServer();
  let onFatal: (() => void) | undefined;
  let finish: () => void = () => {};
  const start: StartServer = (f) => {
    onFatal = f;
    return new Promise((resolve) => (finish = () => resolve(server)));
  };
  return { start, server, fatal: () => onFatal!(), finish: () => finish() };
}

const started = (s: FakeServer): StartServer => () => Promise.resolve(s);
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test('a fatal error while the replica starts ends that start, and the next start command starts it', async () => {
  const reports: HostReport[] = [];
  const host = new HostReplicas((r) => reports.push(r));
  const first = pendingStart();
  const starting = host.start(7, first.start, () => 1);
  await tick();
  first.fatal();
  first.finish();
  await starting;
  assert.deepEqual(reports, [{ type: 'exited', id: 7, code: 1, error: 'fatal storage error' }], 'one exit, never started');
  assert.equal(host.running(7), undefined);
  assert.ok(first.server.closed >= 1, 'what the start opened after the fatal close is closed');

  // kvs up restarts it: the host must start it again.
  const second = new FakeServer();
  await host.start(7, started(second), () => 1);
  assert.deepEqual(reports.at(-1), { type: 'started', id: 7 });
  assert.equal(host.running(7), second);

  // A late fatal from the first server does not end the second.
  first.fatal();
  assert.equal(host.running(7), second);
  assert.equal(reports.length, 2);
});

test('a fatal error during a start that then fails is reported once, as the fatal error', async () => {
  const reports: HostReport[] = [];
  const host = new HostReplicas((r) => reports.push(r));
  let onFatal: () => void = () => {};
  const starting = host.start(
    3,
    (f) => {
      onFatal = f;
      return new Promise((_, reject) => setImmediate(() => reject(new Error('store closed'))));
    },
    () => 2,
  );
  onFatal();
  await starting;
  assert.deepEqual(reports, [{ type: 'exited', id: 3, code: 1, error: 'fatal storage error' }]);
  await host.start(3, started(new FakeServer()), () => 1);
  assert.deepEqual(reports.at(-1), { type: 'started', id: 3 });
});

test('a fatal error of a running replica reports it exited, and it can be started again', async () => {
  const reports: HostReport[] = [];
  const host = new HostReplicas((r) => reports.push(r));
  const p = pendingStart();
  const starting = host.start(1, p.start, () => 1);
  p.finish();
  await starting;
  p.fatal();
  assert.deepEqual(reports, [{ type: 'started', id: 1 }, { type: 'exited', id: 1, code: 1, error: 'fatal storage error' }]);
  assert.equal(host.running(1), undefined);
  await host.start(1, started(new FakeServer()), () => 1);
  assert.deepEqual(reports.at(-1), { type: 'started', id: 1 });
});

test('a stop while the replica starts stops it once started; a failed start reports its code', async () => {
  const reports: HostReport[] = [];
  const host = new HostReplicas((r) => reports.push(r));
  const p = pendingStart();
  const starting = host.start(2, p.start, () => 1);
  const stopping = host.stop(2);
  p.finish();
  await Promise.all([starting, stopping]);
  assert.deepEqual(reports, [{ type: 'started', id: 2 }, { type: 'exited', id: 2, code: 0 }]);
  assert.equal(p.server.shutdowns, 1);

  await host.start(2, () => Promise.reject(new Error('bad flag')), () => 2);
  assert.deepEqual(reports.at(-1), { type: 'exited', id: 2, code: 2, error: 'bad flag' });
  assert.equal(host.running(2), undefined);
});

test('stopAll waits for a replica already stopping: the host does not exit in the middle of its shutdown', async () => {
  // A stop command, then SIGTERM or the supervisor gone (stopAll, then process.exit): stop() of a
  // replica already stopping returned at once, so the host exited before its shutdown (the
  // leader's hand-over, the store's close) had finished. The old code awaited a second shutdown.
  const reports: HostReport[] = [];
  const host = new HostReplicas((r) => reports.push(r));
  const server = new FakeServer();
  let finishShutdown: () => void = () => {};
  server.shutdown = () => new Promise<void>((r) => (finishShutdown = r));
  await host.start(4, started(server), () => 1);
  const stopping = host.stop(4);
  let allStopped = false;
  const all = host.stopAll().then(() => (allStopped = true));
  await tick();
  await tick();
  assert.equal(allStopped, false, 'stopAll ended while the replica was still shutting down');
  finishShutdown();
  await Promise.all([stopping, all]);
  assert.equal(allStopped, true);
  assert.deepEqual(reports, [{ type: 'started', id: 4 }, { type: 'exited', id: 4, code: 0 }], 'one exit report');
});

test('stopAll during a start waits for the start and the stop after it (or the failed start)', async () => {
  // Regression (session 22's open list): stop() of a starting replica returned at once, so SIGTERM
  // during a start let the host exit with the store half opened.
  const reports: HostReport[] = [];
  const host = new HostReplicas((r) => reports.push(r));
  const p = pendingStart();
  const starting = host.start(5, p.start, () => 1);
  let allStopped = false;
  const all = host.stopAll().then(() => (allStopped = true));
  await tick();
  await tick();
  assert.equal(allStopped, false, 'stopAll ended while the replica was still starting');
  p.finish();
  await Promise.all([starting, all]);
  assert.equal(p.server.shutdowns, 1, 'stopped gracefully once started');
  assert.deepEqual(reports, [{ type: 'started', id: 5 }, { type: 'exited', id: 5, code: 0 }]);

  let fail: (e: Error) => void = () => {};
  const failing = host.start(6, () => new Promise((_, reject) => (fail = reject)), () => 2);
  const all2 = host.stopAll();
  fail(new Error('port in use'));
  await Promise.all([failing, all2]);
  assert.deepEqual(reports.at(-1), { type: 'exited', id: 6, code: 2, error: 'port in use' });
});

test('a stop during a start still waiting (for the placement group) cuts the wait short: the host need not be killed', async () => {
  // Regression (review of 9296a7f): stop() waited for the start to end, and a shard replica's start
  // waits up to 60 s for the placement group, which Ctrl-C stops too: the host outlived kvs up's
  // 5 s and was killed -9. The stop now aborts the start's signal; a start that has opened nothing yet gives up.
  const reports: HostReport[] = [];
  const host = new HostReplicas((r) => reports.push(r));
  const waiting: StartServer = (_onFatal, signal?: AbortSignal) =>
    new Promise((_, reject) => {
      signal?.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
    });
  const starting = host.start(8, waiting, () => 1);
  const stopped = await Promise.race([host.stopAll().then(() => 'stopped'), new Promise((r) => setTimeout(() => r('still waiting after 1 s'), 1000))]);
  assert.equal(stopped, 'stopped');
  await starting;
  assert.deepEqual(reports, [{ type: 'exited', id: 8, code: 0 }], 'gone as asked: no start, no error');
  assert.equal(host.running(8), undefined);
});
