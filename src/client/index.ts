// The public surface of the package (`sharded-kvs`, `sharded-kvs/client`, `sharded-kvs-client`):
// the two clients, their error, and the types their methods take and return. Everything else in
// src/ is internal and may change without notice.
export { KvsClient, KvsError, type Bytes, type ClientOptions, type KvsErrorCode } from './client.ts';
export { ShardedClient, type ConfigSource, type ShardedClientOptions } from './sharded-client.ts';
export type { Consistency, ErrorCodeName, KeyValue, StatusInfo } from '../wire/client-types.ts';
export type { ClusterConfig, GroupInfo } from '../placement/config.ts';
