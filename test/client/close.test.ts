// close() ends a client: calls pending at that moment reject at once with KvsError CLOSED ("the client
// was closed"), later calls reject the same way without connecting again, and nothing of the
// client (socket, retry timer, placement poll) keeps the process alive. Before, pending calls went on
// retrying over new connections until their deadline, and a call after close() reconnected silently.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KvsClient, KvsError } from '../../src/client/client.ts';
import { ShardedClient } from '../../src/client/sharded-client.ts';
import { FrameDecoder } from '../../src/wire/index.ts';
import { waitFor } from '../support/wait.ts';

const FIXTURE = resolve(import.meta.dirname, 'close-fixture.ts');
const closedError = (e: unknown): boolean => e instanceof KvsError && e.code === 'CLOSED' && /the client was closed/.test(e.message);

describe('close()', () => {
  // A replica that accepts connections and requests and answers nothing.
  let server: Server;
  let address = '';
  let connections = 0;
  let requests = 0;
  const sockets = new Set<Socket>();
  before(async () => {
    server = createServer((sock) => {
      connections++;
      sockets.add(sock);
      sock.on('close', () => sockets.delete(sock));
      sock.on('error', () => {});
      const decoder = new FrameDecoder();
      sock.on('data', (b) => {
        decoder.push(b);
        while (decoder.read() !== null) requests++;
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });

  it('rejects pending and later calls of a KvsClient at once, and never connects again', async () => {
    const timeoutMs = 30_000;
    const kv = new KvsClient({ endpoints: [address], timeoutMs, attemptTimeoutMs: timeoutMs });
    const before = requests;
    const pending = [kv.get('a'), kv.put('b', 'v'), kv.count()];
    await waitFor('the requests to arrive', () => requests >= before + 3);
    const conns = connections;
    const t = Date.now();
    kv.close();
    for (const p of pending) await assert.rejects(p, closedError);
    await assert.rejects(kv.get('c'), closedError);
    await assert.rejects(kv.put('d', 'v'), closedError);
    await assert.rejects(kv.status(address), closedError);
    assert.ok(Date.now() - t < timeoutMs / 2, 'rejected long before the deadline');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(connections, conns, 'no connection after close()');
    await waitFor('the server to see the connection close', () => sockets.size === 0);
  });

  it('rejects pending and later calls of a ShardedClient at once (groups silent, placement silent)', async () => {
    const timeoutMs = 30_000;
    const kv = new ShardedClient({ placement: [address], endpoints: [address], timeoutMs, attemptTimeoutMs: timeoutMs, configWaitMs: 100 });
    const pending = [kv.get('a'), kv.put('b', 'v'), kv.batch([{ op: 'put', key: 'x', value: '1' }]), kv.ready()];
    await new Promise((r) => setTimeout(r, 300));
    const t = Date.now();
    kv.close();
    for (const p of pending) await assert.rejects(p, closedError);
    await assert.rejects(kv.get('c'), closedError);
    assert.ok(Date.now() - t < timeoutMs / 2, 'rejected long before the deadline');
  });

  it('many concurrent calls raise no listener-leak warning', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => void warnings.push(w);
    process.on('warning', onWarning);
    const kv = new KvsClient({ endpoints: [address], timeoutMs: 300 });
    try {
      await Promise.allSettled(Array.from({ length: 50 }, (_, i) => (i % 2 ? kv.get(`k${i}`) : kv.put(`k${i}`, 'v'))));
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(warnings.map((w) => w.message), []);
    } finally {
      kv.close();
      process.off('warning', onWarning);
    }
  });

  for (const mode of ['plain', 'sharded-silent', 'sharded-refused']) {
    it(`leaves nothing that keeps the process alive (${mode})`, async () => {
      // The calls' deadline is 60 s: a process still alive after 30 s is kept by the client.
      const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, mode], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (b: Buffer) => (out += b.toString()));
      const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((r) => child.on('exit', (c, s) => r([c, s])));
      clearTimeout(killer);
      assert.equal(signal, null, 'the process exited by itself (not killed after 30 s)');
      assert.equal(code, 0);
      const report = JSON.parse(out.trim()) as { results: string[]; after: string[] };
      for (const r of [...report.results, ...report.after]) assert.equal(r, 'CLOSED: the client was closed');
    });
  }
});
