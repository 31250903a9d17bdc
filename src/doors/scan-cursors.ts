// SCAN cursors for the RESP door. Our key space is ordered, so the natural cursor is "the next key
// to read", but Redis clients treat cursors as unsigned 64-bit numbers (redis-cli --scan and
// go-redis parse them with strtoull / as uint64), so a hex or base64 cursor would break them. The
// door therefore hands out decimal numbers and remembers, per replica, which key each continues
// from. The table is bounded (oldest cursors are forgotten first); a forgotten cursor is an error,
// never a silent restart from the beginning.
import { randomInt } from 'node:crypto';

export class ScanCursors {
  private readonly table = new Map<string, Uint8Array>();
  private next: bigint;

  constructor(private readonly capacity = 4096) {
    // A random start, so cursors from a restarted replica are very unlikely to be taken for new ones.
    this.next = BigInt(randomInt(1, 2 ** 47)) << 16n;
  }

  /** A cursor that continues from `key` (inclusive). */
  issue(key: Uint8Array): string {
    this.next = this.next >= 0x7fff_ffff_ffff_ffffn ? 1n : this.next + 1n;
    const id = this.next.toString();
    this.table.set(id, Uint8Array.from(key));
    if (this.table.size > this.capacity) this.table.delete(this.table.keys().next().value!);
    return id;
  }

  /**
   * The key a cursor continues from; 0 starts at the beginning; undefined: unknown cursor. Like
   * Redis, which reads a cursor as a number, leading zeros do not matter ("00" is 0).
   */
  resolve(cursor: string): Uint8Array | undefined {
    const n = cursor.replace(/^0+(?=\d)/, '');
    if (n === '0') return new Uint8Array(0);
    return this.table.get(n);
  }

  get size(): number {
    return this.table.size;
  }
}
