// Sealed records of the `raft` database: reading one verifies it and names the damage if any.
import type { Transaction } from 'lmdb';
import type { Env } from './env.ts';
import { StorageCorruptionError } from './errors.ts';
import { seal, unseal } from './sealed.ts';

export function readRaft<T>(env: Env, key: Buffer, decode: (body: Uint8Array) => T, transaction?: Transaction): T | undefined {
  const stored = env.raft.get(key, transaction ? { transaction } : undefined);
  if (stored === undefined) return undefined;
  const body = unseal(key, stored);
  const what = `the ${key.toString()} record`;
  if (!body) throw new StorageCorruptionError(env.dataFile, undefined, `${what} fails its checksum`);
  try {
    return decode(body);
  } catch (e) {
    throw new StorageCorruptionError(env.dataFile, undefined, `${what} is malformed (${(e as Error).message})`);
  }
}

/** Like readRaft, for records every initialised store has. */
export function requireRaft<T>(env: Env, key: Buffer, decode: (body: Uint8Array) => T, transaction?: Transaction): T {
  const v = readRaft(env, key, decode, transaction);
  if (v === undefined) throw new StorageCorruptionError(env.dataFile, undefined, `the ${key.toString()} record is missing`);
  return v;
}

/** Queues the write into the current batch (see replica-store.ts for when it commits). */
export function putRaft(env: Env, key: Buffer, body: Uint8Array): Promise<boolean> {
  return env.raft.put(key, seal(key, body));
}
