// Public surface of the storage layer (see docs/storage.md).
export { openReplicaStore, type ReplicaStoreOptions } from './open-store.ts';
export { ReplicaStore } from './replica-store.ts';
export { checkKeyValue, DEFAULT_LIMITS, MAX_STORABLE_KEY_BYTES, type Limits } from './limits.ts';
export { InvalidKeyError, StorageCorruptionError, StorageError, StoreFailedError, TooLargeError } from './errors.ts';
export type { Command, CommandResult, KeyValue, KvOp, OpResult, SessionInfo, SessionStamp } from './types.ts';

import { openReplicaStore, type ReplicaStoreOptions } from './open-store.ts';
import type { ReplicaStore } from './replica-store.ts';

/** Alias used by the server: the same store, opened synchronously (awaiting it is harmless). */
export type Store = ReplicaStore;
export async function openStore(options: ReplicaStoreOptions): Promise<ReplicaStore> {
  return openReplicaStore(options);
}
export { openMemoryStore } from './open-store.ts';
export { MemoryDisk, type DiskTiming } from './memory-env.ts';
