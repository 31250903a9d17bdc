// This store's gRPC door (protos/kv.proto, service protos.KV): Put, and Get (always linearizable;
// a missing key is NOT_FOUND). Keys and values are proto3 strings there, kept from the original
// project's service, so the driver hands grpc-js prebuilt strings.
import * as grpc from '@grpc/grpc-js';
import { fileURLToPath } from 'node:url';
import type { DriverOptions } from '../load/driver.ts';
import { GrpcDriver, type GrpcShape, type UnaryCb } from './grpc.ts';

interface KvClient {
  Put(req: { key: Buffer | string; value: Buffer | string }, cb: UnaryCb): void;
  Get(req: { key: Buffer | string }, cb: UnaryCb): void;
}

export const KVS_GRPC_SHAPE: GrpcShape = {
  protoFile: fileURLToPath(new URL('../../protos/kv.proto', import.meta.url)),
  service: 'protos.KV',
  strings: true,
  put: (c, key, value, cb) => (c as unknown as KvClient).Put({ key, value }, cb),
  get: (c, key, _linearizable, cb) => (c as unknown as KvClient).Get({ key }, cb),
  isMiss: () => false,
  missCode: grpc.status.NOT_FOUND,
};

export function kvsGrpcDriver(o: DriverOptions): GrpcDriver {
  return new GrpcDriver(o, KVS_GRPC_SHAPE);
}
