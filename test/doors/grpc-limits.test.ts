// The gRPC door against requests with too many fields, in-process: refused RESOURCE_EXHAUSTED
// (kvs-error TOO_LARGE) by the strict check, before protobufjs builds an object per field. A
// 4 MiB Batch of 2M empty ops took 7-17 s of the replica's event loop to decode before the handler
// refused it; elections followed (found by fuzzing, 2026-12-07).
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { startGrpcDoor } from '../../src/doors/grpc-door.ts';
import type { Door } from '../../src/doors/door-context.ts';
import { fakeContext } from './memory-executor.ts';
import { MemoryExecutor } from './memory-executor.ts';

/** Raw bytes in and out: the client sends what the test builds, unchecked. */
const RawClient = grpc.makeGenericClientConstructor(
  Object.fromEntries(
    ['Get', 'Batch'].map((m) => [
      m,
      {
        path: `/protos.KV/${m}`,
        requestStream: false,
        responseStream: false,
        requestSerialize: (b: Buffer) => b,
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: (b: Buffer) => b,
        responseDeserialize: (b: Buffer) => b,
      },
    ]),
  ),
  'KV',
);

type Raw = grpc.Client & Record<string, (req: Buffer, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null) => void) => void>;

function call(client: Raw, method: string, bytes: Buffer): Promise<grpc.ServiceError | null> {
  return new Promise((resolve) => client[method]!(bytes, new grpc.Metadata(), { deadline: Date.now() + 60_000 }, (e) => resolve(e)));
}

const repeat = (pair: number[], n: number): Buffer => {
  const b = Buffer.alloc(pair.length * n);
  for (let i = 0; i < n; i++) b.set(pair, i * pair.length);
  return b;
};

describe('gRPC door: requests with too many fields', () => {
  const exec = new MemoryExecutor();
  let door: Door;
  let client: Raw;

  before(async () => {
    door = await startGrpcDoor(fakeContext(exec), { listen: '127.0.0.1:0' });
    client = new RawClient(door.address, grpc.credentials.createInsecure()) as unknown as Raw;
  });
  after(async () => {
    client.close();
    await door.close();
  });

  it('a Batch of 2M ops is RESOURCE_EXHAUSTED from the check, and the door serves on', async () => {
    const err = await call(client, 'Batch', repeat([0x0a, 0x00], 2_000_000));
    assert.equal(err?.code, grpc.status.RESOURCE_EXHAUSTED, String(err));
    assert.match(err.details, /ops: more than 10000 elements/);
    assert.deepEqual(err.metadata.get('kvs-error'), ['TOO_LARGE']);
    assert.equal(exec.seen.length, 0, 'never reaches the executor');
    // A key sent 100,001 times: too many fields, though the key field is not repeated.
    const keys = await call(client, 'Get', repeat([0x0a, 0x00], 100_001));
    assert.equal(keys?.code, grpc.status.RESOURCE_EXHAUSTED, String(keys));
    assert.match(keys.details, /more than 100000 fields/);
    // A malformed request is still INVALID_ARGUMENT, and a good one works.
    const bad = await call(client, 'Get', Buffer.from([0x0a, 0x05, 0x61]));
    assert.equal(bad?.code, grpc.status.INVALID_ARGUMENT);
    assert.deepEqual(bad.metadata.get('kvs-error'), ['BAD_REQUEST']);
    exec.data.set('k', Buffer.from('v'));
    assert.equal(await call(client, 'Get', Buffer.from([0x0a, 0x01, 0x6b])), null);
  });
});

// A fuzz test held 20,000 TCP connections that never sent HTTP/2's preface: grpc-js bounds none
// and times none out before the preface (485 MB, the fd limit). The door's own listener now caps
// them as the other doors do.
describe('gRPC door: connections are capped', () => {
  it('refuses a connection past maxConnections; serves again once others close', async () => {
    const door = await startGrpcDoor(fakeContext(new MemoryExecutor()), { listen: '127.0.0.1:0', maxConnections: 3 });
    const [host, port] = [door.address.slice(0, door.address.lastIndexOf(':')), Number(door.address.slice(door.address.lastIndexOf(':') + 1))];
    const open = (): Promise<net.Socket> =>
      new Promise((resolve, reject) => {
        const s = net.connect(port, host, () => resolve(s));
        s.once('error', reject);
      });
    const idle = [await open(), await open(), await open()];
    try {
      const extra = await open();
      extra.on('error', () => {});
      await new Promise<void>((resolve) => (extra.destroyed ? resolve() : extra.once('close', () => resolve())));
      for (const s of idle) assert.equal(s.destroyed, false, 'the first three stay open');
    } finally {
      for (const s of idle) s.destroy();
    }
    const client = new RawClient(door.address, grpc.credentials.createInsecure()) as unknown as Raw;
    try {
      // Answered by the handler (the key field cut short): the connection was taken.
      const bad = await call(client, 'Get', Buffer.from([0x0a, 0x05, 0x61]));
      assert.equal(bad?.code, grpc.status.INVALID_ARGUMENT, String(bad));
    } finally {
      client.close();
      await door.close();
    }
  });
});

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
/** An empty SETTINGS frame: what a client sends right after the preface. */
const SETTINGS = Buffer.from([0, 0, 0, 0x04, 0, 0, 0, 0, 0]);

/**
 * A raw connection that writes `pieces` (apart by a few ms) and records the types of the HTTP/2
 * frames the server sends back, until the server closes it, `capMs` passes, or (`until`) the server
 * sent a frame of that type (then closedAfterMs is undefined: open when we hung up).
 */
function rawConnection(port: number, pieces: Buffer[], capMs: number, until?: number): Promise<{ closedAfterMs: number | undefined; frameTypes: number[] }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const s = net.connect(port, '127.0.0.1', async () => {
      for (const p of pieces) {
        if (s.destroyed) return;
        s.write(p);
        await new Promise((r) => setTimeout(r, 5));
      }
    });
    let input = Buffer.alloc(0);
    const frameTypes: number[] = [];
    s.on('data', (d: Buffer) => {
      input = Buffer.concat([input, d]);
      while (input.length >= 9 && input.length >= 9 + input.readUIntBE(0, 3)) {
        frameTypes.push(input[3]!);
        input = input.subarray(9 + input.readUIntBE(0, 3));
      }
      if (until !== undefined && frameTypes.includes(until)) hangUp();
    });
    s.on('error', () => {});
    const hangUp = (): void => {
      clearTimeout(cap);
      resolve({ closedAfterMs: undefined, frameTypes });
      s.destroy();
    };
    const cap = setTimeout(hangUp, capMs);
    s.on('close', () => {
      clearTimeout(cap);
      resolve({ closedAfterMs: Date.now() - started, frameTypes });
    });
  });
}

const bytewise = (b: Buffer): Buffer[] => [...b].map((x) => Buffer.from([x]));

// grpc-js waits for HTTP/2's preface forever: a connection that never sent it (or sent half)
// held its slot of the connection limit for good. The door reads the preface itself first.
describe('gRPC door: connections must speak HTTP/2 in time', () => {
  it('closes a connection without the whole preface after prefaceTimeoutMs, one with other bytes at once; real clients still work', async () => {
    // Two doors, so that no assertion is about how long the machine took: one whose preface timeout
    // (500 ms) the silent connections run into, and one whose timeout (60 s) no connection here
    // reaches, where a connection closed at all was closed for its bytes (at once), and a preface
    // sent a byte at a time is served however slowly a loaded machine delivers it.
    const exec = new MemoryExecutor();
    const door = await startGrpcDoor(fakeContext(exec), { listen: '127.0.0.1:0', prefaceTimeoutMs: 500 });
    const patient = await startGrpcDoor(fakeContext(exec), { listen: '127.0.0.1:0', prefaceTimeoutMs: 60_000 });
    const portOf = (d: { address: string }): number => Number(d.address.slice(d.address.lastIndexOf(':') + 1));
    const [port, patientPort] = [portOf(door), portOf(patient)];
    const client = new RawClient(door.address, grpc.credentials.createInsecure()) as unknown as Raw;
    try {
      const [silent, half, http1, almost, slowPreface] = await Promise.all([
        rawConnection(port, [], 30_000),
        rawConnection(port, [PREFACE.subarray(0, 16)], 30_000),
        rawConnection(patientPort, [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')], 30_000),
        rawConnection(patientPort, [PREFACE.subarray(0, 20), Buffer.from('XXXX')], 30_000),
        // The preface a byte at a time, then SETTINGS: a session, answered with the server's SETTINGS.
        rawConnection(patientPort, [...bytewise(PREFACE), SETTINGS], 30_000, 0x04),
      ]);
      for (const [name, r] of [['silent', silent], ['half a preface', half]] as const) {
        assert.ok(r.closedAfterMs !== undefined && r.closedAfterMs >= 450, `${name}: closed after ${r.closedAfterMs} ms`);
        assert.deepEqual(r.frameTypes, [], `${name}: nothing sent`);
      }
      for (const [name, r] of [['HTTP/1.1', http1], ['a wrong byte at 20', almost]] as const) {
        assert.ok(r.closedAfterMs !== undefined, `${name}: closed at once, not left open until the preface timeout`);
        assert.deepEqual(r.frameTypes, [], `${name}: nothing sent`);
      }
      assert.equal(slowPreface.closedAfterMs, undefined, 'a preface sent slowly but in time is served');
      assert.ok(slowPreface.frameTypes.includes(0x04), `the server's SETTINGS came back: ${slowPreface.frameTypes.join()}`);
      // A real client's preface, SETTINGS and calls pass through unchanged.
      exec.data.set('k', Buffer.from('v'));
      assert.equal(await call(client, 'Get', Buffer.from([0x0a, 0x01, 0x6b])), null);
      assert.equal((await call(client, 'Get', Buffer.from([0x0a, 0x05, 0x61])))?.code, grpc.status.INVALID_ARGUMENT);
    } finally {
      client.close();
      await door.close();
      await patient.close();
    }
  });

  it('closes an HTTP/2 connection without calls after maxConnectionIdleMs; a client reconnects by itself', async () => {
    const exec = new MemoryExecutor();
    const door = await startGrpcDoor(fakeContext(exec), { listen: '127.0.0.1:0', maxConnectionIdleMs: 500 });
    const port = Number(door.address.slice(door.address.lastIndexOf(':') + 1));
    const client = new RawClient(door.address, grpc.credentials.createInsecure()) as unknown as Raw;
    try {
      const idle = await rawConnection(port, [PREFACE, SETTINGS], 30_000); // a cap, not a bound: the close is awaited
      assert.ok(idle.closedAfterMs !== undefined && idle.closedAfterMs >= 450, `closed after ${idle.closedAfterMs} ms`);
      assert.ok(idle.frameTypes.includes(0x07), `told with a GOAWAY first: ${idle.frameTypes.join()}`);
      exec.data.set('k', Buffer.from('v'));
      assert.equal(await call(client, 'Get', Buffer.from([0x0a, 0x01, 0x6b])), null);
      await new Promise((r) => setTimeout(r, 1200)); // its connection is closed meanwhile
      assert.equal(await call(client, 'Get', Buffer.from([0x0a, 0x01, 0x6b])), null, 'the next call reconnects');
    } finally {
      client.close();
      await door.close();
    }
  });

  it('pings a connection and drops it when the ping goes unanswered', async () => {
    const door = await startGrpcDoor(fakeContext(new MemoryExecutor()), { listen: '127.0.0.1:0', keepaliveTimeMs: 300, keepaliveTimeoutMs: 300 });
    const port = Number(door.address.slice(door.address.lastIndexOf(':') + 1));
    try {
      // Never acknowledges anything: a peer that is gone (or stuck) without a FIN or a reset.
      const gone = await rawConnection(port, [PREFACE, SETTINGS], 30_000); // a cap, not a bound: the drop is awaited
      assert.ok(gone.frameTypes.includes(0x06), `a PING was sent: ${gone.frameTypes.join()}`);
      assert.ok(gone.closedAfterMs !== undefined && gone.closedAfterMs >= 550, `dropped after ${gone.closedAfterMs} ms`);
    } finally {
      await door.close();
    }
  });
});

// A connection still sending its preface when the door closed was handed to the shut-down grpc-js
// server once the rest arrived: served (its SETTINGS answered) and held open after close(), which
// kept the process alive (found in review, 2026-12-07). Half a preface also held it until the timer.
describe('gRPC door: close() and connections still sending the preface', () => {
  it('closes them at once, and never hands one to grpc-js after close()', async () => {
    const door = await startGrpcDoor(fakeContext(new MemoryExecutor()), { listen: '127.0.0.1:0', prefaceTimeoutMs: 60_000 });
    const port = Number(door.address.slice(door.address.lastIndexOf(':') + 1));
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => {});
    const fromServer: Buffer[] = [];
    s.on('data', (d: Buffer) => fromServer.push(d));
    const closed = new Promise<number>((r) => s.once('close', () => r(Date.now())));
    try {
      await new Promise((r) => s.once('connect', r));
      s.write(PREFACE.subarray(0, 10));
      await new Promise((r) => setTimeout(r, 100)); // accepted and waiting for the rest
      await door.close();
      if (!s.destroyed) s.write(Buffer.concat([PREFACE.subarray(10), SETTINGS]));
      // Closed at all is closed with the door: its preface timeout (60 s) is far off, and a
      // connection served on would stay open. Waited for generously, not timed.
      let wait: NodeJS.Timeout | undefined;
      const gone = await Promise.race([closed, new Promise<undefined>((r) => (wait = setTimeout(() => r(undefined), 20_000)))]);
      clearTimeout(wait);
      assert.ok(gone !== undefined, 'the connection is closed with the door, not served on');
      assert.equal(Buffer.concat(fromServer).length, 0, 'no HTTP/2 frame was sent after close()');
    } finally {
      s.destroy();
    }
  });
});
