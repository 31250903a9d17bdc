// The gRPC door's standard services, asked as grpcurl and Kubernetes would: grpc.health.v1 Check
// and Watch follow the door's readiness (the /readyz check), and server reflection (v1 and v1alpha)
// lists the services and hands out descriptors from which a client is built without kv.proto.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { startGrpcDoor } from '../../src/doors/grpc-door.ts';
import { HEALTH_PROTO_PATH } from '../../src/doors/grpc-health.ts';
import type { Door } from '../../src/doors/door-context.ts';
import { fakeContext, type FakeContext } from './memory-executor.ts';
import { waitFor } from '../support/wait.ts';

type Status = 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN' | 'UNKNOWN';
interface HealthClient extends grpc.Client {
  Check(req: { service: string }, cb: (err: grpc.ServiceError | null, res?: { status: Status }) => void): void;
  Watch(req: { service: string }): grpc.ClientReadableStream<{ status: Status }>;
}

const LOADER = { keepCase: true, enums: String, defaults: true, oneofs: true };

function healthClient(address: string): HealthClient {
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(HEALTH_PROTO_PATH, LOADER)) as unknown as {
    grpc: { health: { v1: { Health: new (a: string, c: grpc.ChannelCredentials) => HealthClient } } };
  };
  return new pkg.grpc.health.v1.Health(address, grpc.credentials.createInsecure());
}

function check(c: HealthClient, service: string): Promise<Status> {
  return new Promise((resolve, reject) => c.Check({ service }, (err, res) => (err ? reject(err) : resolve(res!.status))));
}

// The reflection protos as the @grpc/reflection package publishes them: the client side knows
// nothing of this repository's protos.
const REFLECTION_PROTOS = join(dirname(createRequire(import.meta.url).resolve('@grpc/reflection')), '../proto');

interface ReflectionResponse {
  list_services_response?: { service: { name: string }[] };
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
  error_response?: { error_code: number; error_message: string };
}

function reflect(address: string, version: 'v1' | 'v1alpha', requests: object[]): Promise<ReflectionResponse[]> {
  const def = protoLoader.loadSync(join(REFLECTION_PROTOS, `grpc/reflection/${version}/reflection.proto`), LOADER);
  const Ctor = (grpc.loadPackageDefinition(def) as unknown as { grpc: { reflection: Record<string, { ServerReflection: new (a: string, c: grpc.ChannelCredentials) => grpc.Client }> } }).grpc.reflection[version]!.ServerReflection;
  const client = new Ctor(address, grpc.credentials.createInsecure()) as grpc.Client & { ServerReflectionInfo(): grpc.ClientDuplexStream<object, ReflectionResponse> };
  return new Promise((resolve, reject) => {
    const out: ReflectionResponse[] = [];
    const call = client.ServerReflectionInfo();
    call.on('data', (r: ReflectionResponse) => {
      out.push(r);
      if (out.length === requests.length) call.end();
    });
    call.on('error', reject);
    call.on('end', () => {
      client.close();
      resolve(out);
    });
    for (const r of requests) call.write(r);
  });
}

/** A FileDescriptorSet (field 1, repeated FileDescriptorProto) around the descriptors reflection returned. */
function descriptorSet(files: Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of files) {
    const len: number[] = [];
    let n = f.length;
    while (n >= 0x80) {
      len.push((n & 0x7f) | 0x80);
      n >>>= 7;
    }
    len.push(n);
    parts.push(Buffer.from([0x0a, ...len]), f);
  }
  return Buffer.concat(parts);
}

describe('gRPC door: health and reflection', () => {
  let ctx: FakeContext;
  let door: Door;
  let health: HealthClient;

  before(async () => {
    ctx = fakeContext();
    door = await startGrpcDoor(ctx, { listen: '127.0.0.1:0' });
    health = healthClient(door.address);
  });
  after(async () => {
    health.close();
    await door.close();
  });

  it('Check: SERVING when ready, NOT_SERVING when not, for "" and "protos.KV"; NOT_FOUND for others', async () => {
    ctx.readiness = { ready: true, reason: 'caught up' };
    assert.equal(await check(health, ''), 'SERVING');
    assert.equal(await check(health, 'protos.KV'), 'SERVING');
    ctx.readiness = { ready: false, reason: 'no leader known to this replica' };
    assert.equal(await check(health, ''), 'NOT_SERVING');
    assert.equal(await check(health, 'protos.KV'), 'NOT_SERVING');
    await assert.rejects(check(health, 'nope.Service'), (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND);
    ctx.readiness = { ready: true, reason: 'caught up' };
  });

  it('malformed Check and Watch requests get INVALID_ARGUMENT, as the KV service does', async () => {
    const raw = (path: string, bytes: number[], stream: boolean): Promise<grpc.ServiceError> =>
      new Promise((resolve) => {
        const identity = (x: Buffer): Buffer => x;
        if (!stream) {
          health.makeUnaryRequest(path, identity, identity, Buffer.from(bytes), (err) => resolve(err!));
          return;
        }
        const call = health.makeServerStreamRequest(path, identity, identity, Buffer.from(bytes));
        call.on('error', (e: grpc.ServiceError) => resolve(e));
        call.on('data', () => {});
      });
    // A length running past the end, and a service name that is not UTF-8.
    for (const bytes of [[0x0a, 0x0a, 0x41], [0x0a, 0x02, 0xff, 0xfe]]) {
      const c = await raw('/grpc.health.v1.Health/Check', bytes, false);
      assert.equal(c.code, grpc.status.INVALID_ARGUMENT, c.details);
      assert.equal(c.metadata.get('kvs-error')[0], 'BAD_REQUEST');
      const w = await raw('/grpc.health.v1.Health/Watch', bytes, true);
      assert.equal(w.code, grpc.status.INVALID_ARGUMENT, w.details);
    }
  });

  it('Watch: the status now, then each change; SERVICE_UNKNOWN for an unknown service', async () => {
    const seen: Status[] = [];
    const watch = health.Watch({ service: '' });
    watch.on('data', (r: { status: Status }) => seen.push(r.status));
    watch.on('error', () => {});
    await waitFor('the first status', () => seen.length >= 1);
    assert.deepEqual(seen, ['SERVING']);
    ctx.readiness = { ready: false, reason: 'catching up' };
    await waitFor('NOT_SERVING', () => seen.length >= 2);
    ctx.readiness = { ready: true, reason: 'caught up' };
    await waitFor('SERVING again', () => seen.length >= 3);
    assert.deepEqual(seen, ['SERVING', 'NOT_SERVING', 'SERVING'], 'one message per change, none repeated');
    watch.cancel();

    const unknown: Status[] = [];
    const w2 = health.Watch({ service: 'nope.Service' });
    w2.on('data', (r: { status: Status }) => unknown.push(r.status));
    w2.on('error', () => {});
    await waitFor('SERVICE_UNKNOWN', () => unknown.length >= 1);
    assert.deepEqual(unknown, ['SERVICE_UNKNOWN']);
    w2.cancel();
  });

  for (const version of ['v1', 'v1alpha'] as const) {
    it(`reflection ${version}: lists the services; a client built from its descriptors alone calls KV`, async () => {
      const [list, file, missing] = await reflect(door.address, version, [{ list_services: '*' }, { file_containing_symbol: 'protos.KV' }, { file_containing_symbol: 'no.Such' }]);
      const names = list!.list_services_response!.service.map((s) => s.name);
      assert.ok(names.includes('protos.KV') && names.includes('grpc.health.v1.Health'), names.join(', '));
      assert.equal(missing!.error_response?.error_code, grpc.status.NOT_FOUND);

      const files = file!.file_descriptor_response!.file_descriptor_proto;
      assert.ok(files.length >= 1);
      const pkg = grpc.loadPackageDefinition(protoLoader.loadFileDescriptorSetFromBuffer(descriptorSet(files), { keepCase: true })) as unknown as {
        protos: { KV: new (a: string, c: grpc.ChannelCredentials) => grpc.Client & Record<string, (req: object, cb: (e: grpc.ServiceError | null, r?: { value?: string }) => void) => void> };
      };
      const kv = new pkg.protos.KV(door.address, grpc.credentials.createInsecure());
      try {
        const call = (m: string, req: object): Promise<{ value?: string }> => new Promise((res, rej) => kv[m]!.call(kv, req, (e, r) => (e ? rej(e) : res(r!))));
        await call('Put', { key: `reflected-${version}`, value: 'works' });
        assert.equal((await call('Get', { key: `reflected-${version}` })).value, 'works');
      } finally {
        kv.close();
      }
    });
  }

  it('closing the door ends every Watch with NOT_SERVING', async () => {
    const own = await startGrpcDoor(ctx, { listen: '127.0.0.1:0' });
    const client = healthClient(own.address);
    const seen: Status[] = [];
    const watch = client.Watch({ service: 'protos.KV' });
    watch.on('data', (r: { status: Status }) => seen.push(r.status));
    const ended = new Promise<void>((resolve) => {
      watch.on('end', resolve);
      watch.on('error', () => resolve());
    });
    await waitFor('the first status', () => seen.length >= 1);
    await own.close();
    await ended;
    client.close();
    assert.deepEqual(seen, ['SERVING', 'NOT_SERVING']);
  });
});
