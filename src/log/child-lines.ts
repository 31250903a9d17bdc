// `kvs up` runs many replicas on one terminal: in text mode each child's stderr line gets a
// `[shard-1/r102] ` label; JSON lines already carry group and replica and pass through unchanged.
import type { Readable } from 'node:stream';

/** `placement/r1` or `shard-1/r102`. */
export function childLabel(role: 'placement' | 'shard', group: number, replica: number): string {
  return role === 'placement' ? `placement/r${replica}` : `shard-${group}/r${replica}`;
}

/**
 * Splits a byte stream into lines and hands each (with its newline) to `write`, prefixed with
 * `[label] `. A partial last line is flushed at the end of the stream, so nothing is lost.
 */
export function labelLines(from: Readable, label: string, write: (line: string) => void): void {
  const prefix = `[${label}] `;
  let pending = '';
  from.setEncoding('utf8');
  from.on('data', (chunk: string) => {
    const text = pending + chunk;
    const end = text.lastIndexOf('\n');
    if (end < 0) {
      pending = text;
      return;
    }
    pending = text.slice(end + 1);
    let out = '';
    for (const line of text.slice(0, end).split('\n')) out += `${prefix}${line}\n`;
    write(out);
  });
  from.on('end', () => {
    if (pending !== '') write(`${prefix}${pending}\n`);
    pending = '';
  });
}
