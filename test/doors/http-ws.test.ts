// The HTTP door and the WebSocket native door of a real 3-replica group, on uWebSockets.js and on
// the node:http + ws fallback (KVS_HTTP_IMPL=node): every route with fetch (and curl when
// installed), JSON errors, /metrics parsed as Prometheus text, native frames pipelined over a
// WebSocket, and /readyz flipping while a restarted replica cannot reach its leader and back once
// it has caught up.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { percentEncode } from '../../src/doors/http-util.ts';
import { encodeFrame, type Request } from '../../src/wire/index.ts';
import { DoorCluster } from './cluster.ts';
import { waitFor } from '../support/wait.ts';
import { parsePrometheus, sampleValue } from './prom-parse.ts';
import { NativeWs, WsClient } from './ws-client.ts';

const HAVE_CURL = spawnSync('curl', ['--version']).status === 0;

for (const [impl, basePort] of [['uws', 21200], ['node', 21250]] as const)
describe(`HTTP and WebSocket doors (${impl}) against a 3-replica group`, { timeout: 240_000 }, () => {
  let cluster: DoorCluster;
  const url = (id: number, path: string): string => `http://${cluster.address(id, 'http')}${path}`;
  const json = async (r: Response): Promise<Record<string, unknown>> => (await r.json()) as Record<string, unknown>;
  const errorCode = async (r: Response): Promise<string> => ((await json(r)).error as { code: string }).code;

  before(async () => {
    cluster = await DoorCluster.start(basePort, { ...process.env, KVS_HTTP_IMPL: impl });
  });
  after(async () => {
    await cluster?.stop();
  });

  it(impl === 'node' ? 'the fallback says so: one warning line per replica' : 'uWS loads: no fallback warning', () => {
    for (const id of cluster.ids) {
      const lines = (cluster.logs.get(id) ?? []).join('').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { level: string; msg: string; reason?: string });
      const warnings = lines.filter((l) => l.msg.includes('instead of uWebSockets.js'));
      assert.equal(warnings.length, impl === 'node' ? 1 : 0, `replica ${id}`);
      if (impl === 'node') assert.deepEqual([warnings[0]!.level, warnings[0]!.reason], ['warn', 'KVS_HTTP_IMPL=node']);
    }
  });

  it('/healthz, /readyz and /v1/status on every replica', async () => {
    for (const id of cluster.ids) {
      const h = await fetch(url(id, '/healthz'));
      assert.equal(h.status, 200);
      assert.equal(await h.text(), 'ok\n');
      await waitFor(`replica ${id} ready`, async () => ((await fetch(url(id, '/readyz'))).status === 200 ? true : undefined));
      const ready = await fetch(url(id, '/readyz'));
      assert.deepEqual(await json(ready), { ready: true, reason: 'leader known and caught up' });
    }
    const statuses = await Promise.all(cluster.ids.map(async (id) => json(await fetch(url(id, '/v1/status')))));
    assert.equal(statuses.filter((s) => s.role === 'leader').length, 1);
    for (const s of statuses) {
      assert.equal(typeof s.term, 'number');
      assert.equal(typeof s.commitIndex, 'number');
      assert.equal((s.peers as unknown[]).length, 2);
      const endpoints = s.endpoints as Record<string, string>;
      assert.deepEqual(Object.keys(endpoints).sort(), ['grpc', 'http', 'native', 'resp', 'ws']);
      assert.equal(endpoints.ws, `ws://${cluster.address(s.replicaId as number, 'http')}/v1/ws`);
    }
  });

  it('GET, PUT and DELETE /v1/kv/{key} through any replica, binary keys and values', async () => {
    const key = Buffer.from([0x61, 0x2f, 0x00, 0xff, 0x20, 0x25]); // "a/\0\xff %"
    const value = Buffer.from([0, 1, 2, 254, 255]);
    const path = `/v1/kv/${percentEncode(key)}`;
    const put = await fetch(url(1, path), { method: 'PUT', body: value });
    assert.equal(put.status, 200);
    assert.deepEqual(await put.json(), { ok: true });
    for (const id of cluster.ids) {
      const r = await fetch(url(id, path));
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('content-type'), 'application/octet-stream');
      assert.deepEqual(Buffer.from(await r.arrayBuffer()), value);
    }
    assert.equal((await fetch(url(2, `${path}?consistency=stale`))).status, 200);
    assert.equal((await fetch(url(3, path), { method: 'DELETE' })).status, 200);
    const gone = await fetch(url(1, path));
    assert.equal(gone.status, 404);
    assert.equal(await errorCode(gone), 'NOT_FOUND');
    assert.equal((await fetch(url(2, '/v1/kv/never'), { method: 'DELETE' })).status, 200);
  });

  it('answers bad requests with JSON errors and the right status', async () => {
    const cases: [string, RequestInit | undefined, number, string][] = [
      ['/v1/kv/k?consistency=bogus', undefined, 400, 'BAD_REQUEST'],
      ['/v1/kv/bad%zzkey', undefined, 400, 'BAD_REQUEST'],
      ['/v1/kv/', undefined, 400, 'BAD_REQUEST'],
      ['/v1/kv/k', { method: 'POST', body: 'x' }, 405, 'METHOD_NOT_ALLOWED'],
      ['/v1/kv/k', { method: 'PUT', body: Buffer.alloc((1 << 20) + 1) }, 413, 'TOO_LARGE'],
      [`/v1/kv/${'k'.repeat(5000)}`, { method: 'PUT', body: 'v' }, 413, 'TOO_LARGE'],
      ['/v1/kv/%00', { method: 'PUT', body: 'v' }, 200, ''],
      ['/nope', undefined, 404, 'NOT_FOUND'],
      ['/healthz', { method: 'POST' }, 405, 'METHOD_NOT_ALLOWED'],
    ];
    for (const [path, init, status, code] of cases) {
      const r = await fetch(url(2, path), init);
      assert.equal(r.status, status, `${init?.method ?? 'GET'} ${path.slice(0, 40)}`);
      if (code) {
        assert.equal(r.headers.get('content-type'), 'application/json');
        assert.equal(await errorCode(r), code, path.slice(0, 40));
      } else await r.arrayBuffer();
    }
    assert.equal((await fetch(url(2, '/v1/kv/k'), { method: 'POST' })).headers.get('allow'), 'GET, HEAD, PUT, DELETE');
  });

  it('a body announced too large is answered 413 and read to its end: the sender sees the answer, not a reset', async () => {
    // Closing at once used to race the client still uploading: it got EPIPE instead of the 413.
    const [host, port] = cluster.address(2, 'http').split(':');
    const size = 3 << 20;
    const out = await new Promise<{ text: string; error: string | undefined }>((resolve) => {
      const s = net.connect(Number(port), host);
      let text = '';
      let error: string | undefined;
      s.on('data', (d) => (text += d.toString('latin1')));
      s.on('error', (e) => (error = (e as NodeJS.ErrnoException).code));
      s.on('close', () => resolve({ text, error }));
      s.write(`PUT /v1/kv/k HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\n`);
      const piece = Buffer.alloc(64 << 10, 0x61);
      let sent = 0;
      const pump = (): void => {
        if (sent >= size) {
          s.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
          return;
        }
        sent += piece.length;
        if (s.write(piece)) setImmediate(pump);
        else s.once('drain', pump);
      };
      pump();
    });
    assert.equal(out.error, undefined, 'the upload was not cut off');
    assert.match(out.text, /^HTTP\/1\.1 413 /);
    assert.match(out.text, /"TOO_LARGE"/);
    assert.match(out.text, /HTTP\/1\.1 200 [^]*ok\n$/, 'the connection serves the next request');
  });

  it('works with curl', { skip: HAVE_CURL ? false : 'curl is not installed' }, () => {
    const curl = (...args: string[]): string => spawnSync('curl', ['-s', ...args], { encoding: 'utf8' }).stdout;
    assert.equal(curl('-X', 'PUT', '--data-binary', 'from curl', url(3, '/v1/kv/curl')), '{"ok":true}\n');
    assert.equal(curl(url(1, '/v1/kv/curl')), 'from curl');
    assert.match(curl('-i', url(2, '/readyz')), /^HTTP\/1\.1 200 OK/);
  });

  it('/metrics parses as Prometheus text and counts doors, Raft and fsync', async () => {
    const leader = await cluster.waitForLeader();
    await fetch(url(leader.replicaId, '/v1/kv/m'), { method: 'PUT', body: 'v' });
    await fetch(url(leader.replicaId, '/v1/kv/m'));
    const r = await fetch(url(leader.replicaId, '/metrics'));
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
    const e = parsePrometheus(await r.text());
    assert.ok(sampleValue(e, 'kvs_requests_total', { door: 'http', op: 'kv_put', outcome: 'ok' })! >= 1);
    assert.ok(sampleValue(e, 'kvs_request_duration_seconds_count', { door: 'http', op: 'kv_get' })! >= 1);
    assert.equal(sampleValue(e, 'kvs_raft_role', { role: 'leader' }), 1);
    assert.equal(sampleValue(e, 'kvs_raft_term'), leader.term);
    assert.ok(sampleValue(e, 'kvs_raft_commit_index')! > 0);
    assert.ok(sampleValue(e, 'kvs_raft_applied_index')! > 0);
    assert.ok(sampleValue(e, 'kvs_raft_log_entries')! > 0);
    assert.ok(sampleValue(e, 'kvs_fsync_duration_seconds_count')! > 0);
    assert.ok(sampleValue(e, 'kvs_fsync_batch_entries_count')! > 0);
    assert.ok(sampleValue(e, 'kvs_router_proposed_total')! > 0);
    for (const name of ['kvs_raft_leader_changes_total', 'kvs_router_forwarded_total', 'kvs_peer_connected', 'kvs_storage_file_bytes', 'kvs_keys']) {
      assert.ok(e.types.has(name), name);
    }
    const follower = cluster.ids.find((id) => id !== leader.replicaId)!;
    await fetch(url(follower, '/v1/kv/fwd'), { method: 'PUT', body: 'v' });
    const fe = parsePrometheus(await (await fetch(url(follower, '/metrics'))).text());
    assert.ok(sampleValue(fe, 'kvs_router_forwarded_total')! >= 1);
  });

  it('round-trips pipelined native frames over a WebSocket, on a follower', async () => {
    const leader = await cluster.waitForLeader();
    const follower = cluster.ids.find((id) => id !== leader.replicaId)!;
    const ws = await NativeWs.connect(cluster.port(follower, 'http'));
    try {
      const enc = new TextEncoder();
      const id0 = { clientId: 0x1234n, seq: 0 };
      const puts: Request[] = Array.from({ length: 100 }, (_, i) => ({ op: 'put', key: enc.encode(`ws:${i}`), value: enc.encode(`v${i}`), clientId: id0.clientId + BigInt(i), seq: 1 }));
      const big = Buffer.alloc(512 * 1024, 7);
      puts.push({ op: 'put', key: enc.encode('ws:big'), value: big, clientId: 0x9999n, seq: 1 });
      const acks = await ws.send(puts, 10); // 10 frames per WebSocket message
      assert.ok(acks.every((r) => r.kind === 'ok'), JSON.stringify(acks.find((r) => r.kind !== 'ok')));
      const gets: Request[] = puts.map((p) => ({ op: 'get', key: (p as { key: Uint8Array }).key, consistency: 'linearizable' }));
      const values = await ws.send([...gets, { op: 'ping' }, { op: 'status' }]);
      values.slice(0, 100).forEach((r, i) => assert.deepEqual(r, { kind: 'value', value: Buffer.from(`v${i}`) }));
      assert.deepEqual(values[100], { kind: 'value', value: big });
      assert.deepEqual(values[101], { kind: 'ok' });
      assert.equal(values[102]!.kind, 'status');
      const scan = await ws.one({ op: 'scan', start: enc.encode('ws:'), end: enc.encode('ws;'), limit: 1000, consistency: 'linearizable' });
      assert.equal(scan.kind === 'scan' && scan.items.length, 101);
    } finally {
      ws.close();
    }
  });

  it('the WebSocket door: malformed bodies answered, bad framing and text closed, big messages refused', async () => {
    const port = cluster.port(1, 'http');
    const ws = await NativeWs.connect(port);
    // A GET whose body is cut short: BAD_REQUEST with its request id, and the connection lives.
    ws.ws.sendBinary(encodeFrame(0x03, 77, Buffer.from([0x00, 0x00, 0x05, 0x61])));
    await waitFor('the BAD_REQUEST answer', async () => (ws.arrivals.includes(77) ? true : undefined));
    assert.equal((await ws.one({ op: 'ping' })).kind, 'ok');
    ws.close();

    const text = await WsClient.connect(port);
    text.sendText('PING');
    assert.equal((await text.closed).code, 1003);

    const framing = await WsClient.connect(port);
    framing.sendBinary(Buffer.from([0, 0, 0, 1, 1])); // length 1 < 5: framing lost
    assert.equal((await framing.closed).code, 1002);

    const huge = await WsClient.connect(port);
    huge.sendBinary(Buffer.alloc(4 * 1024 * 1024 + 64 * 1024 + 1));
    assert.notEqual((await huge.closed).code, 1000);

    const after = await NativeWs.connect(port);
    assert.equal((await after.one({ op: 'ping' })).kind, 'ok');
    after.close();
  });

  it('/readyz is 503 while a restarted replica cannot catch up, 200 once it has', async () => {
    const leader = await cluster.waitForLeader();
    const victim = cluster.ids.find((id) => id !== leader.replicaId)!;
    const others = cluster.ids.filter((id) => id !== victim);
    await cluster.kill(victim);
    for (let i = 0; i < 200; i++) {
      const r = await fetch(url(leader.replicaId, `/v1/kv/catchup:${i}`), { method: 'PUT', body: `v${i}` });
      assert.equal(r.status, 200);
    }
    const before = await json(await fetch(url(leader.replicaId, '/v1/status')));
    // With the other two stopped, the restarted replica can learn of no leader: it cannot be ready.
    for (const id of others) cluster.signal(id, 'SIGSTOP');
    try {
      cluster.spawn(victim);
      await waitFor('the restarted replica to answer /healthz', async () => ((await fetch(url(victim, '/healthz')).catch(() => undefined))?.status === 200 ? true : undefined));
      const notReady = await fetch(url(victim, '/readyz'));
      assert.equal(notReady.status, 503);
      assert.equal((await json(notReady)).ready, false);
    } finally {
      for (const id of others) cluster.signal(id, 'SIGCONT');
    }
    await waitFor('the restarted replica to become ready', async () => ((await fetch(url(victim, '/readyz'))).status === 200 ? true : undefined));
    const after = await json(await fetch(url(victim, '/v1/status')));
    assert.ok((after.appliedIndex as number) >= (before.commitIndex as number), `applied ${String(after.appliedIndex)} < ${String(before.commitIndex)}`);
    const last = await fetch(url(victim, '/v1/kv/catchup:199?consistency=stale'));
    assert.equal(await last.text(), 'v199');
  });
});
