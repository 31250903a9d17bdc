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
