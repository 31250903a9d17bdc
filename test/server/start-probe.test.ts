// A starting replica on Kubernetes answers the kubelet's liveness probe before its doors open
// (src/server/start-probe.ts): /healthz while the start is within its bound, never /readyz.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { startProbe } from '../../src/server/start-probe.ts';
import { loadConfig } from '../../src/server/config.ts';
import { KvsServer } from '../../src/server/server.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { openReplicaStore, openStore } from '../../src/storage/index.ts';
import { waitFor } from '../support/wait.ts';

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** The status of GET path, or the connection error's code. */
async function get(port: number, path: string): Promise<number | string> {
  try {
    return (await fetch(`http://127.0.0.1:${port}${path}`)).status;
  } catch (e) {
    return ((e as { cause?: { code?: string } }).cause?.code ?? String(e)) as string;
  }
}

/** The status of GET path through node:http (fetch's own timers read Date.now, which a test steps). */
function status(port: number, path: string): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path }, (res) => {
      res.resume();
      resolve(res.statusCode);
    })
      .on('error', reject)
      .end();
  });
}

describe('the start probe', () => {
  it('answers /healthz until the start is overdue, /readyz never, and frees its port when closed', async () => {
    const port = await freePort();
    let t = 0;
    const probe = await startProbe(`127.0.0.1:${port}`, 1000, () => t);
    try {
      assert.equal(await get(port, '/healthz'), 200);
      assert.equal(await get(port, '/readyz'), 503);
      assert.equal(await get(port, '/v1/kv/k'), 503);
      // Past the bound of every start step: a start stuck without a timeout of its own is restarted.
      t = 1000;
      assert.equal(await get(port, '/healthz'), 503);
    } finally {
      await probe.close();
      await probe.close();
    }
    assert.equal(await get(port, '/healthz'), 'ECONNREFUSED');
    // The HTTP door can take the port.
    const s = net.createServer();
    await new Promise<void>((r, j) => s.once('error', j).listen(port, '127.0.0.1', r));
    await new Promise<void>((r) => s.close(() => r()));
  });

  it('is not made overdue by a wall clock stepped ahead while the pod starts', async () => {
    // Before: the deadline was on Date.now, so an NTP step forward during a long walk (whose own
    // timeout runs on the monotonic clock) turned /healthz to 503 and liveness restarted a healthy start.
    const port = await freePort();
    const wall = Date.now;
    let step = 0;
    Date.now = () => wall() + step;
    const probe = await startProbe(`127.0.0.1:${port}`, 60_000);
    try {
      assert.equal(await status(port, '/healthz'), 200);
      step = 86_400_000;
      assert.equal(await status(port, '/healthz'), 200);
    } finally {
      Date.now = wall;
      await probe.close();
    }
  });
});

describe('a replica pod that waits for the cluster configuration', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvs-start-probe-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('is live (not ready) on its HTTP port meanwhile, and gives the port back when the start ends', async () => {
    // Before: nothing listened until the doors opened, so the startup probe had to cover every
    // step (up to a walk of the whole volume: prod allowed 6000 s), and liveness could not apply.
    const [native, http, placement] = await Promise.all([freePort(), freePort(), freePort()]);
    const config = loadConfig({
      'pod-name': 'shard-0-3',
      'dns-suffix': 'kvs.svc',
      'placement-set': 'placement',
      placement: `127.0.0.1:${placement}`, // nobody there: the wait lasts until aborted
      listen: `127.0.0.1:${native}`,
      http: `127.0.0.1:${http}`,
      data: join(dir, 'data'),
    });
    const abort = new AbortController();
    const started = KvsServer.start(config, { signal: abort.signal, log: silentLogger });
    started.catch(() => {});
    await waitFor('the pod to answer its liveness probe', async () => (await get(http, '/healthz')) === 200);
    assert.equal(await get(http, '/readyz'), 503);
    abort.abort(new Error('stopped'));
    await assert.rejects(started, /stopped/);
    assert.equal(await get(http, '/healthz'), 'ECONNREFUSED');
  });
});

describe('opening a store', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvs-open-walk-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('lets the event loop run while a child walks its structure', async () => {
    // Before: the walk was spawnSync, so a replica answered nothing (its probes included) for as
    // long as the walk of its store took.
    const path = join(dir, 'r');
    const created = openReplicaStore({ path, identity: { group: 1, replica: 101 } });
    await created.close();
    let turned = false;
    setImmediate(() => (turned = true));
    const store = await openStore({ path, identity: { group: 1, replica: 101 } });
    try {
      assert.equal(turned, true, 'the event loop turned during the open (its walk)');
    } finally {
      await store.close();
    }
  });
});
