// A client that cancels a gRPC Scan while the server waits for the stream to drain: the handler
// must end and record the call. It used to wait for a "drain" that a cancelled call never emits,
// one stuck task per abandoned stream for the life of the process, and the call was never counted.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { KV_PROTO_PATH, MAX_STREAMS_PER_CONNECTION, startGrpcDoor } from '../../src/doors/grpc-door.ts';
import { waitFor } from '../support/wait.ts';
import { MemoryExecutor, fakeContext } from './memory-executor.ts';

interface ScanClient extends grpc.Client {
  Scan(req: { start?: Buffer; limit?: number }): grpc.ClientReadableStream<{ key: Buffer; value: Buffer }>;
}

test('a Scan cancelled while the server waits for the stream to drain ends, and is counted', async () => {
  const mem = new MemoryExecutor();
  // 30 MB behind each stream: far more than HTTP/2 lets through to a reader that reads nothing.
  for (let i = 0; i < 600; i++) mem.data.set(Buffer.from(`k${String(i).padStart(4, '0')}`).toString('latin1'), Buffer.alloc(50_000, i));
  const ctx = fakeContext(mem);
  const door = await startGrpcDoor(ctx, { listen: '127.0.0.1:0' });
  const def = protoLoader.loadSync(KV_PROTO_PATH, { keepCase: true, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { protos: { KV: new (a: string, c: grpc.ChannelCredentials) => ScanClient } };
  const client = new pkg.protos.KV(door.address, grpc.credentials.createInsecure());
  try {
    const streams = Array.from({ length: 5 }, () => client.Scan({ start: Buffer.from('k') }));
    for (const s of streams) {
      s.on('error', () => {}); // CANCELLED, our own doing
      s.pause(); // read nothing: the server's writes back up behind a paused reader
    }
    await new Promise((r) => setTimeout(r, 300));
    for (const s of streams) s.cancel();
    await waitFor('every cancelled scan to end', () => ctx.observed.filter((o) => o.op === 'scan').length === 5);
    assert.deepEqual(new Set(ctx.observed.filter((o) => o.op === 'scan').map((o) => o.outcome)), new Set(['CANCELLED']));
  } finally {
    client.close();
    await door.close();
  }
});

test('one HTTP/2 connection runs at most MAX_STREAMS_PER_CONNECTION calls at once (found in review, 2026-12-07)', async () => {
  // Each held stream may keep a scan page in memory: a thousand on one connection held 2 GB.
  const mem = new MemoryExecutor();
  let inFlight = 0;
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const execute = mem.execute.bind(mem);
  mem.execute = async (req, raw) => {
    if (req.op !== 'get') return execute(req, raw);
    inFlight++;
    await released;
    inFlight--;
    return execute(req, raw);
  };
  const door = await startGrpcDoor(fakeContext(mem), { listen: '127.0.0.1:0' });
  const def = protoLoader.loadSync(KV_PROTO_PATH, { keepCase: true, defaults: true, oneofs: true });
  type GetClient = grpc.Client & { Get(req: { key: Buffer }, cb: (e: grpc.ServiceError | null) => void): void };
  const pkg = grpc.loadPackageDefinition(def) as unknown as { protos: { KV: new (a: string, c: grpc.ChannelCredentials) => GetClient } };
  const client = new pkg.protos.KV(door.address, grpc.credentials.createInsecure());
  try {
    const calls = Array.from({ length: MAX_STREAMS_PER_CONNECTION + 30 }, (_, i) => new Promise<grpc.ServiceError | null>((r) => client.Get({ key: Buffer.from(`k${i}`) }, r)));
    await waitFor('the server holds as many calls as it allows', () => inFlight === MAX_STREAMS_PER_CONNECTION, 10_000);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(inFlight, MAX_STREAMS_PER_CONNECTION, 'the rest wait in the client, not in the server');
    release();
    const errors = await Promise.all(calls);
    assert.ok(errors.every((e) => e === null || e.code === grpc.status.NOT_FOUND), 'every call answered');
  } finally {
    client.close();
    await door.close();
  }
});
