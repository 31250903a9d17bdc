// `kvs server` whose replica closes itself (a fatal storage error) while its start opens its doors.
// KvsServer.start returns such a replica closed (3883115); `kvs server` went on as if it ran: it
// logged "listening" with doors already closed and kept the process running (with
// --initial-groups its bootstrap then retried against the closed replica for good, so the
// process never exited and kvs up never restarted it). Found in review of 3883115.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { KvsServer } from '../../src/server/server.ts';
import { runServer } from '../../src/cli/server-command.ts';
import { KvsClient } from '../../src/client/client.ts';
import { Tracer } from '../../src/trace/tracer.ts';
import { freeAddress } from '../support/free-address.ts';

describe('kvs server whose replica has a fatal storage error while it starts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvs-server-fatal-start-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('ends with code 1 without claiming to listen or waiting for a signal', async () => {
    const listen = await freeAddress();
    // The replica's storage fails (Replica's fatal path, as a failed persist) right after its links listen.
    const proto = KvsServer.prototype as unknown as { listen(this: KvsServer): Promise<void> };
    const listen0 = proto.listen;
    proto.listen = async function (this: KvsServer): Promise<void> {
      await listen0.call(this);
      (this.replica as unknown as { fatal(e: unknown): void }).fatal(new Error('injected: disk full'));
    };
    const lines: string[] = [];
    const write0 = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string | Uint8Array): boolean => (lines.push(String(chunk)), true)) as typeof process.stderr.write;
    const [sigterm, sigint] = [process.listeners('SIGTERM'), process.listeners('SIGINT')];
    let code: number;
    try {
      code = await runServer(['--id', '1', '--listen', listen, '--data', join(dir, 'r1'), '--replicas', `1=${listen}`, '--log-format', 'json']);
    } finally {
      proto.listen = listen0;
      process.stderr.write = write0;
      // A run that went on left its signal handlers in this test process.
      for (const l of process.listeners('SIGTERM')) if (!sigterm.includes(l)) process.removeListener('SIGTERM', l);
      for (const l of process.listeners('SIGINT')) if (!sigint.includes(l)) process.removeListener('SIGINT', l);
      process.exitCode = undefined; // the fatal path's exit code, for the process this test runs in
    }
    const msgs = lines.map((l) => (JSON.parse(l) as { msg: string }).msg);
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
    const proto = KvsServer.prototype as unknown as { listen(this: KvsServer): Promise<void> };
    const listen0 = proto.listen;
    proto.listen = function (this: KvsServer): Promise<void> {
      const listening = listen0.call(this);
      // The store fails while the address is looked up (Replica's fatal path, as a failed persist).
      (this.replica as unknown as { fatal(e: unknown): void }).fatal(new Error('injected: disk full'));
      return listening;
    };
    const lines: string[] = [];
    const write0 = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string | Uint8Array): boolean => (lines.push(String(chunk)), true)) as typeof process.stderr.write;
    const [sigterm, sigint] = [process.listeners('SIGTERM'), process.listeners('SIGINT')];
    let code: number | Error;
    try {
      code = await runServer(['--id', '1', '--listen', listen, '--data', join(dir, 'r1'), '--replicas', `1=${listen}`, '--log-format', 'json']).catch((e: Error) => e);
    } finally {
      proto.listen = listen0;
      process.stderr.write = write0;
      for (const l of process.listeners('SIGTERM')) if (!sigterm.includes(l)) process.removeListener('SIGTERM', l);
      for (const l of process.listeners('SIGINT')) if (!sigint.includes(l)) process.removeListener('SIGINT', l);
      process.exitCode = undefined; // the fatal path's exit code, for the process this test runs in
    }
    const msgs = lines.map((l) => (JSON.parse(l) as { msg: string }).msg);
    assert.ok(msgs.includes('fatal storage error, stopping'), msgs.join(' | '));
    assert.ok(!msgs.includes('listening'), msgs.join(' | '));
    assert.equal(code, 1);
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
    const k = KvsServer as unknown as { start: (...a: unknown[]) => Promise<KvsServer> };
    const start0 = k.start;
    let server: KvsServer | undefined;
    k.start = async (...a: unknown[]): Promise<KvsServer> => (server = await start0.apply(KvsServer, a));
    const write0 = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((): boolean => true) as typeof process.stderr.write;
    const [sigterm, sigint] = [process.listeners('SIGTERM'), process.listeners('SIGINT')];
    const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
    try {
      const argv = ['--pod-name', 'placement-0', '--dns-suffix', 'kvs.local', '--group-size', '1', '--bootstrap-groups', 'shard-1'];
      const code = await runServer([...argv, '--listen', listen, '--data', join(dir, 'p0'), '--log-format', 'json']);
      assert.equal(code, -1, 'runs');
      for (let i = 0; i < 50 && attempts < 2; i++) await sleep(100);
      assert.ok(attempts >= 2, `bootstrap attempts: ${attempts}`);
      (server!.replica as unknown as { fatal(e: unknown): void }).fatal(new Error('injected: disk full'));
      await server!.close();
      await sleep(1200); // the bootstrap's sleep between attempts ends: its next look
      const at = attempts;
      await sleep(2500);
      assert.equal(attempts, at, 'no bootstrap attempt after the replica closed itself');
    } finally {
      done = true;
      client.get = get0;
      k.start = start0;
      process.stderr.write = write0;
      for (const l of process.listeners('SIGTERM')) if (!sigterm.includes(l)) process.removeListener('SIGTERM', l);
      for (const l of process.listeners('SIGINT')) if (!sigint.includes(l)) process.removeListener('SIGINT', l);
      process.exitCode = undefined;
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
    const k = KvsServer as unknown as { start: (...a: unknown[]) => Promise<KvsServer> };
    const start0 = k.start;
    let server: KvsServer | undefined;
    k.start = async (...a: unknown[]): Promise<KvsServer> => (server = await start0.apply(KvsServer, a));
    const stop0 = Tracer.prototype.stop;
    let stops = 0;
    Tracer.prototype.stop = function (this: Tracer): Promise<void> {
      stops++;
      return stop0.call(this);
    };
    const capture0 = process.env.KVS_TRACE_CAPTURE;
    process.env.KVS_TRACE_CAPTURE = 'tap'; // the in-process tap: no root needed, same stop path
    const write0 = process.stderr.write.bind(process.stderr); // the replica's log (stdout carries the runner's reports)
    process.stderr.write = ((): boolean => true) as typeof process.stderr.write;
    const [sigterm, sigint] = [process.listeners('SIGTERM'), process.listeners('SIGINT')];
    try {
      const code = await runServer(['--id', '1', '--listen', listen, '--data', join(dir, 'r1'), '--replicas', `1=${listen}`, '--trace', '--log-format', 'json']);
      assert.equal(code, -1, 'runs');
      assert.equal(stops, 0);
      (server!.replica as unknown as { fatal(e: unknown): void }).fatal(new Error('injected: disk full'));
      await server!.close();
      await new Promise((r) => setImmediate(r)); // the fatal path's onFatal runs after the close
      assert.equal(stops, 1, 'the tracer was stopped');
      assert.equal(process.exitCode, 1);
    } finally {
      k.start = start0;
      Tracer.prototype.stop = stop0;
      if (capture0 === undefined) delete process.env.KVS_TRACE_CAPTURE;
      else process.env.KVS_TRACE_CAPTURE = capture0;
      process.stderr.write = write0;
      for (const l of process.listeners('SIGTERM')) if (!sigterm.includes(l)) process.removeListener('SIGTERM', l);
      for (const l of process.listeners('SIGINT')) if (!sigint.includes(l)) process.removeListener('SIGINT', l);
      process.exitCode = undefined;
    }
  });
});
