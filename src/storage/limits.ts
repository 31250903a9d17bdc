// Size limits on user keys and values, checked by the replica before it proposes a write.
import { InvalidKeyError, TooLargeError } from './errors.ts';

export interface Limits {
  maxKeyBytes: number;
  maxValueBytes: number;
}

/**
 * The largest key lmdb-js can store (it caps keys at 4026 bytes, and only with pages of 8 KiB or
 * more; see docs/storage.md). A 4 KiB key limit cannot be honoured, so this is the default.
 */
export const MAX_STORABLE_KEY_BYTES = 4026;

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxKeyBytes: MAX_STORABLE_KEY_BYTES,
  maxValueBytes: 1024 * 1024,
});

/** Throws TooLargeError (or InvalidKeyError for an empty key) when the pair may not be written. */
export function checkKeyValue(key: Uint8Array, value: Uint8Array | null | undefined, limits: Limits = DEFAULT_LIMITS): void {
  if (key.length === 0) throw new InvalidKeyError('the empty key cannot be stored');
  if (key.length > limits.maxKeyBytes) throw new TooLargeError('key', key.length, limits.maxKeyBytes);
  if (value && value.length > limits.maxValueBytes) throw new TooLargeError('value', value.length, limits.maxValueBytes);
}

/** Completes partial limits and rejects ones the environment cannot honour. */
export function resolveLimits(partial: Partial<Limits> | undefined): Limits {
  const limits = { ...DEFAULT_LIMITS, ...partial };
  for (const [name, v] of Object.entries(limits)) {
    if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`limits.${name} must be a positive integer, got ${v}`);
  }
  if (limits.maxKeyBytes > MAX_STORABLE_KEY_BYTES) {
    throw new RangeError(`limits.maxKeyBytes ${limits.maxKeyBytes} exceeds what LMDB can store (${MAX_STORABLE_KEY_BYTES})`);
  }
  return limits;
}
