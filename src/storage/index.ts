// Public surface of the storage layer (see docs/storage.md).
export { openReplicaStore, openStore, type ReplicaStoreOptions } from './open-store.ts';
export { DATA_FILE } from './preflight.ts';
export { ReplicaStore } from './replica-store.ts';
export { checkKeyValue, DEFAULT_LIMITS, MAX_STORABLE_KEY_BYTES, type Limits } from './limits.ts';
export { InvalidKeyError, StorageCorruptionError, StorageError, StoreFailedError, TooLargeError } from './errors.ts';
export type { Command, CommandResult, KeyValue, KvOp, OpResult, SessionInfo, SessionStamp } from './types.ts';

import type { ReplicaStore } from './replica-store.ts';

/** The server's name for a replica's store. */
export type Store = ReplicaStore;
export { openMemoryStore } from './open-store.ts';
export { MemoryDisk, type DiskTiming } from './memory-env.ts';
export { MemoryWalDisk } from './memory-wal.ts';
