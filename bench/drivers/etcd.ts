// etcd's v3 KV over gRPC: Put, and Range of one key, linearizable (serializable = false) unless
// stale reads are asked for.
import { fileURLToPath } from 'node:url';
import type { DriverOptions } from '../load/driver.ts';
import { GrpcDriver, type GrpcShape, type UnaryCb } from './grpc.ts';

interface KvClient {
  Put(req: { key: Buffer | string; value: Buffer | string }, cb: UnaryCb): void;
  Range(req: { key: Buffer | string; serializable: boolean }, cb: UnaryCb): void;
}

export const ETCD_SHAPE: GrpcShape = {
  protoFile: fileURLToPath(new URL('../protos/etcd-kv.proto', import.meta.url)),
  service: 'etcdserverpb.KV',
  strings: false,
  put: (c, key, value, cb) => (c as unknown as KvClient).Put({ key, value }, cb),
  get: (c, key, linearizable, cb) => (c as unknown as KvClient).Range({ key, serializable: !linearizable }, cb),
  isMiss: (res) => ((res as { kvs?: unknown[] }).kvs?.length ?? 0) === 0,
};

export function etcdDriver(o: DriverOptions): GrpcDriver {
  return new GrpcDriver(o, ETCD_SHAPE);
}
