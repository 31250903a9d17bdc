// Every stored value carries a CRC-32 trailer over its key and body, so damage is detected on read
// and a value copied under the wrong key is caught too.
import { crc32 } from './crc32.ts';
import { readU32, writeU32 } from './bytes.ts';

export const SEAL_BYTES = 4;

/** body ‖ crc32(key ‖ body), in a fresh Buffer. */
export function seal(key: Uint8Array, body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(body.length + SEAL_BYTES);
  out.set(body, 0);
  writeU32(out, body.length, crc32(body, crc32(key)));
  return out;
}

/** Seals in place: `out` holds the body in [0, out.length - 4) and gets the trailer. */
export function sealInPlace(key: Uint8Array, out: Uint8Array): void {
  const end = out.length - SEAL_BYTES;
  writeU32(out, end, crc32(out, crc32(key), 0, end));
}

/** The body (a view, no copy), or undefined when the trailer does not match. */
export function unseal(key: Uint8Array, stored: Uint8Array): Uint8Array | undefined {
  const end = stored.length - SEAL_BYTES;
  if (end < 0) return undefined;
  if (crc32(stored, crc32(key), 0, end) !== readU32(stored, end)) return undefined;
  return stored.subarray(0, end);
}
