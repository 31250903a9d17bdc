// Keys and values are bytes. Client commands print them unchanged (get, scan) and, with --json,
// as a UTF-8 string when the bytes are valid UTF-8 ("value") and as base64 otherwise
// ("valueBase64"): never both, so the field name says how to read it and nothing is garbled.

// fatal: reject invalid UTF-8 instead of replacing it; ignoreBOM: keep a leading EF BB BF.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** `{ [name]: text }` or `{ [name + 'Base64']: base64 }`. */
export function jsonBytes(name: string, bytes: Uint8Array): Record<string, string> {
  try {
    return { [name]: strictUtf8.decode(bytes) };
  } catch {
    return { [`${name}Base64`]: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64') };
  }
}

/**
 * All of a stream (stdin for `kvs put KEY -`), byte for byte; undefined once it passes `max` bytes
 * (reading stops there, so a huge input is never held whole).
 */
export async function readAll(stream: AsyncIterable<Buffer | string>, max = Infinity): Promise<Uint8Array | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of stream) {
    const b = typeof c === 'string' ? Buffer.from(c) : c;
    size += b.length;
    if (size > max) return undefined;
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}
