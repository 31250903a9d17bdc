// `kvs server` whose replica closes itself (a fatal storage error) while its start opens its doors.
// KvsServer.start returns such a replica closed (3883115); `kvs server` went on as if it ran: it
// logged "listening" with doors already closed and kept the process running (with
// --initial-groups its bootstrap then retried against the closed replica for good, so the
// process never exited and kvs up never restarted it). Found in review of 3883115.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runServer } from '../../src/cli/server-command.ts';
import { KvsClient } from '../../src/client/client.ts';
import { Tracer } from '../../src/trace/tracer.ts';
import { freeAddress } from '../support/free-address.ts';
import { asServerProcess, failStorage, failStorageAtListen, keepStarted } from '../support/fatal-replica.ts';

/** `kvs server argv` in this process, its storage failing at its links' listen: its code (or what it threw) and its log messages. */
async function runWithFatal(when: 'during' | 'after', argv: string[]): Promise<{ code: number | Error; msgs: string[] }> {
  const restore = failStorageAtListen(when);
  return asServerProcess(async (lines) => {
    try {
      const code = await runServer(argv).catch((e: Error) => e);
      return { code, msgs: lines.map((l) => (JSON.parse(l) as { msg: string }).msg) };
    } finally {
      restore();
    }
  });
}

describe('kvs server whose replica has a fatal storage error while it starts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvs-server-fatal-start-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('ends with code 1 without claiming to listen or waiting for a signal', async () => {
    const listen = await freeAddress();
    const { code, msgs } = await runWithFatal('after', ['--id', '1', '--listen', listen, '--data', join(dir, 'r1'), '--replicas', `1=${listen}`, '--log-format', 'json']);
    assert.ok(msgs.includes('fatal storage error, stopping'), msgs.join(' | '));
    assert.ok(!msgs.includes('listening'), `no "listening" after the fatal error: ${msgs.join(' | ')}`);
    assert.equal(code, 1, 'ends with the fatal error\'s code, not -1 (keep running)');
  });
});

describe('kvs server whose replica has a fatal storage error while its links start to listen', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvs-server-fatal-listen-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('ends with code 1 as for a fatal error later in its start, not a failed start "closed before listening"', async () => {
    // Found in review of bb0163e: the fatal path's close now ends the pending listen with an error,
    // and KvsServer.start threw it: kvs server printed "closed before listening on ..." as its
    // failure and exited 3 (FAILED), where a fatal storage error ends it with 1 (a kvs host replica
    // was reported right: host-replicas.ts checks for the fatal first).
    const listen = await freeAddress();
    const { code, msgs } = await runWithFatal('during', ['--id', '1', '--listen', listen, '--data', join(dir, 'r1'), '--replicas', `1=${listen}`, '--log-format', 'json']);
    assert.ok(msgs.includes('fatal storage error, stopping'), msgs.join(' | '));
    assert.ok(!msgs.includes('listening'), msgs.join(' | '));
    assert.equal(code, 1);
  });
});

describe('kvs server whose replica has a fatal storage error, then a door that cannot listen', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvs-server-fatal-door-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('ends with code 1 (the fatal error), not the door\'s failed start', async () => {
    // Found in review of 510a817, which did this for the links' listen: a door failing after the
    // fatal error (its RESP port taken here) was thrown, and kvs server exited with the door's error.
    const listen = await freeAddress();
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const resp = `127.0.0.1:${(taken.address() as net.AddressInfo).port}`;
    try {
      const { code, msgs } = await runWithFatal('after', ['--id', '1', '--listen', listen, '--resp', resp, '--data', join(dir, 'r1'), '--replicas', `1=${listen}`, '--log-format', 'json']);
      assert.ok(msgs.includes('fatal storage error, stopping'), msgs.join(' | '));
      assert.ok(!msgs.includes('listening'), msgs.join(' | '));
      assert.equal(code, 1);
    } finally {
      await new Promise((r) => taken.close(r));
    }
  });
});

describe('kvs server (a placement pod with --bootstrap-groups) whose replica has a fatal storage error after its start', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvs-server-fatal-bootstrap-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('stops its bootstrap: nothing keeps the process from ending with code 1', async () => {
    // Found in review of 3883115: the bootstrap retried for good against the closed replica (it
    // stopped only on a signal), so the pod's process never exited after the fatal error.
    const listen = await freeAddress();
    let attempts = 0;
    let done = false;
    const client = KvsClient.prototype as unknown as { get(): Promise<unknown> };
    const get0 = client.get;
    // Every bootstrap attempt fails at once (no placement group answers); once the test is over, a
    // bootstrap still going waits for good on a promise nobody settles (no timer kept alive).
    client.get = (): Promise<unknown> => (done ? new Promise(() => {}) : (attempts++, Promise.reject(new Error('no placement group yet'))));
    const started = keepStarted();
    const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
    try {
      await asServerProcess(async () => {
        const argv = ['--pod-name', 'placement-0', '--dns-suffix', 'kvs.local', '--group-size', '1', '--bootstrap-groups', 'shard-1'];
        const code = await runServer([...argv, '--listen', listen, '--data', join(dir, 'p0'), '--log-format', 'json']);
        assert.equal(code, -1, 'runs');
        for (let i = 0; i < 50 && attempts < 2; i++) await sleep(100);
        assert.ok(attempts >= 2, `bootstrap attempts: ${attempts}`);
        failStorage(started.last()!);
        await started.last()!.close();
        await sleep(1200); // the bootstrap's sleep between attempts ends: its next look
        const at = attempts;
        await sleep(2500);
        assert.equal(attempts, at, 'no bootstrap attempt after the replica closed itself');
      });
    } finally {
      done = true;
      client.get = get0;
      started.restore();
    }
  });
});

describe('kvs server --trace whose replica has a fatal storage error after its start', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvs-server-fatal-trace-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('stops its tracer: nothing keeps the process from ending with code 1', async () => {
    // Found in review of 5ef74a7: the fatal path closed the replica and set the exit code but left
    // the tracer running; an eBPF capture holds the process (and its programs stay attached).
    const listen = await freeAddress();
    const started = keepStarted();
    const stop0 = Tracer.prototype.stop;
    let stops = 0;
    Tracer.prototype.stop = function (this: Tracer): Promise<void> {
      stops++;
      return stop0.call(this);
    };
    const capture0 = process.env.KVS_TRACE_CAPTURE;
    process.env.KVS_TRACE_CAPTURE = 'tap'; // the in-process tap: no root needed, same stop path
    try {
      await asServerProcess(async () => {
        const code = await runServer(['--id', '1', '--listen', listen, '--data', join(dir, 'r1'), '--replicas', `1=${listen}`, '--trace', '--log-format', 'json']);
        assert.equal(code, -1, 'runs');
        assert.equal(stops, 0);
        failStorage(started.last()!);
        await started.last()!.close();
        await new Promise((r) => setImmediate(r)); // the fatal path's onFatal runs after the close
        assert.equal(stops, 1, 'the tracer was stopped');
        assert.equal(process.exitCode, 1);
      });
    } finally {
      started.restore();
      Tracer.prototype.stop = stop0;
      if (capture0 === undefined) delete process.env.KVS_TRACE_CAPTURE;
      else process.env.KVS_TRACE_CAPTURE = capture0;
    }
  });
});
