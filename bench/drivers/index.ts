// Protocol name → driver.
import type { Driver, DriverOptions } from '../load/driver.ts';
import { etcdDriver } from './etcd.ts';
import { NativeDriver } from './native.ts';
import { RespDriver } from './resp.ts';

export const PROTOCOLS = ['native', 'resp', 'etcd', 'kvs-grpc'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

export async function createDriver(protocol: Protocol, o: DriverOptions): Promise<Driver> {
  switch (protocol) {
    case 'native':
      return new NativeDriver(o);
    case 'resp':
      return new RespDriver(o);
    case 'etcd':
      return etcdDriver(o);
    case 'kvs-grpc':
      // Loaded lazily: the proto belongs to the gRPC door, which may not be there yet.
      return (await import('./kvs-grpc.ts')).kvsGrpcDriver(o);
  }
}
