// The HTTP and WebSocket doors in-process (uWebSockets.js, and the node:http + ws fallback, over an in-memory executor) under random
// and mutated input: routes, methods, percent-encodings and bodies through fetch; raw malformed
// HTTP over TCP; random WebSocket messages. Every answer is a known status with a JSON error, and
// the server keeps serving throughout.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startHttpDoorWith } from './http-impl-door.ts';
import { percentEncode } from '../../src/doors/http-util.ts';
import type { Door } from '../../src/doors/door-context.ts';
import { encodeRequest, type Request } from '../../src/wire/index.ts';
import { MemoryExecutor, fakeContext } from './memory-executor.ts';
import { Prng } from './prng.ts';
import { NativeWs, WsClient } from './ws-client.ts';

for (const impl of ['uws', 'node'] as const)
describe(`HTTP and WebSocket doors (${impl}) under fuzzing`, { timeout: 120_000 }, () => {
  let door: Door;
  let port: number;
  const exec = new MemoryExecutor();
  const base = (): string => `http://127.0.0.1:${port}`;

  before(async () => {
    door = await startHttpDoorWith(impl, fakeContext(exec, { maxKeyBytes: 256, maxValueBytes: 4096 }), { listen: '127.0.0.1:0', ws: { maxPayloadBytes: 64 * 1024 } });
    port = Number(door.address.split(':')[1]);
  });
  after(async () => {
    await door.close();
  });

  async function alive(): Promise<void> {
    const r = await fetch(`${base()}/healthz`);
    assert.equal(r.status, 200);
    await r.text();
  }

  it('round-trips random binary keys and values through percent-encoded paths', async () => {
    const rng = new Prng(21);
    for (let i = 0; i < 200; i++) {
      const key = rng.bytes(1 + rng.int(40));
      const value = rng.bytes(rng.int(100));
      const path = `${base()}/v1/kv/${percentEncode(key)}`;
      assert.equal((await fetch(path, { method: 'PUT', body: value })).status, 200);
      const r = await fetch(path);
      assert.equal(r.status, 200);
      assert.deepEqual(Buffer.from(await r.arrayBuffer()), value);
      assert.deepEqual(exec.data.get(key.toString('latin1')), value);
    }
  });

  it('answers random routes, methods, queries and bodies with known statuses and JSON errors', async () => {
    const rng = new Prng(22);
    const methods = ['GET', 'PUT', 'DELETE', 'POST', 'PATCH', 'OPTIONS'];
    const prefixes = ['/v1/kv/', '/v1/kv', '/healthz', '/readyz', '/metrics', '/v1/status', '/', '/v1/', '/v1/kv//'];
    const junk = '%%2%zz%00%ff/?&=+;:@!$\'()*,~.._-';
    const known = new Set([200, 400, 404, 405, 413]);
    for (let i = 0; i < 400; i++) {
      let tail = '';
      for (let k = rng.int(12); k > 0; k--) tail += rng.int(2) ? junk[rng.int(junk.length)] : String.fromCharCode(0x61 + rng.int(26));
      const query = rng.int(3) === 0 ? `?consistency=${rng.pick(['stale', 'linearizable', 'x', ''])}` : '';
      const method = rng.pick(methods);
      const body = method === 'GET' || method === 'OPTIONS' ? undefined : rng.bytes(rng.int(3) === 0 ? 5000 : rng.int(64));
      let r: Response;
      try {
        r = await fetch(`${base()}${rng.pick(prefixes)}${tail}${query}`, { method, body });
      } catch (e) {
        if (String((e as Error).cause ?? e).includes('Invalid URL')) continue; // fetch refused to send it
        throw e;
      }
      assert.ok(known.has(r.status), `${method} ${tail}: ${r.status}`);
      const text = await r.text();
      if (r.status >= 400) {
        const parsed = JSON.parse(text) as { error: { code: string; message: string } };
        assert.equal(typeof parsed.error.code, 'string');
        assert.equal(typeof parsed.error.message, 'string');
      }
    }
    await alive();
  });

  it('survives raw malformed HTTP on many connections', async () => {
    const rng = new Prng(23);
    const valid = [
      'GET /v1/kv/a HTTP/1.1\r\nHost: x\r\n\r\n',
      'PUT /v1/kv/a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc',
      'PUT /v1/kv/a HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\nabc',
      'PUT /v1/kv/a HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n',
      'PUT /v1/kv/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n',
      `GET /v1/kv/${'a'.repeat(40_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
      `GET / HTTP/1.1\r\n${'X-Junk: y\r\n'.repeat(3000)}\r\n`,
      'GET /readyz HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n',
    ];
    for (let i = 0; i < 250; i++) {
      let input: Buffer = Buffer.from(rng.pick(valid));
      if (rng.int(3) === 0) input = rng.bytes(1 + rng.int(300));
      else for (let m = rng.int(4); m > 0; m--) input[rng.int(input.length)] = rng.pick([0x0d, 0x0a, 0x20, 0x3a, 0x25, 0x00, rng.int(256)]);
      await new Promise<void>((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port }, () => s.end(input));
        s.on('data', () => {});
        s.on('error', () => resolve());
        s.on('close', () => resolve());
        s.setTimeout(2000, () => s.destroy()); // a request still waiting for its body: give up on it
      });
      if (i % 50 === 0) await alive();
    }
    await alive();
  });

  it('survives random WebSocket messages, and still round-trips native frames', async () => {
    const rng = new Prng(24);
    const enc = new TextEncoder();
    const requests: Request[] = [
      { op: 'ping' },
      { op: 'get', key: enc.encode('a'), consistency: 'stale' },
      { op: 'put', key: enc.encode('ws'), value: enc.encode('v'), clientId: 1n, seq: 1 },
      { op: 'scan', start: new Uint8Array(0), end: null, limit: 3, consistency: 'linearizable' },
      { op: 'batch', ops: [{ op: 'delete', key: enc.encode('x') }], clientId: 0n, seq: 0 },
    ];
    for (let i = 0; i < 100; i++) {
      const ws = await WsClient.connect(port);
      ws.onMessage = () => {};
      for (let m = 1 + rng.int(4); m > 0; m--) {
        const kind = rng.int(10);
        if (kind === 0) ws.sendText('hello');
        else if (kind === 1) ws.sendBinary(rng.bytes(rng.int(200)));
        else if (kind === 2) ws.sendBinary(Buffer.alloc(70 * 1024)); // over maxPayloadLength
        else {
          const frame = Buffer.from(encodeRequest(1 + rng.int(1000), rng.pick(requests)));
          for (let k = rng.int(3); k > 0; k--) frame[rng.int(frame.length)] = rng.int(256);
          ws.sendBinary(frame);
        }
      }
      ws.close();
      await ws.closed;
    }
    const native = await NativeWs.connect(port);
    const answers = await native.send(requests);
    assert.deepEqual(
      answers.map((r) => r.kind),
      ['ok', 'value', 'ok', 'scan', 'ok'],
    );
    native.close();
    await alive();
  });
});
