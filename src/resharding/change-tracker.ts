// The keys of some partitions that committed writes touched since a hand-off's pre-copy began, so
// that only those keys travel again (resharding/source.ts). Pure: fed keys in log order. A delta
// round takes the keys changed so far (plus those of an unfinished earlier round) sorted by
// (partition, key), the order of its chunks, and tracking starts afresh for the next round.

/** More changed keys than this and the delta is no cheaper than a full copy: stop tracking. */
export const MAX_TRACKED_KEYS = 1_000_000;

export interface TrackedKey {
  partition: number;
  key: Uint8Array;
}

export class ChangeTracker {
  private readonly wanted: ReadonlySet<number>;
  private changed = new Map<string, TrackedKey>();
  /** The keys of the round being sent, sorted; undefined between rounds. */
  private round: TrackedKey[] | undefined;
  /** Set when more keys changed than MAX_TRACKED_KEYS: the tracker can no longer answer. */
  overflowed = false;
  lastUsed: number;

  constructor(
    /** The source's leadership term when tracking began: a delta needs the same unbroken term. */
    readonly term: number,
    partitions: readonly number[],
    private readonly partitionOf: (key: Uint8Array) => number,
    now: number,
  ) {
    this.wanted = new Set(partitions);
    this.lastUsed = now;
  }

  note(key: Uint8Array): void {
    if (this.overflowed) return;
    const partition = this.partitionOf(key);
    if (!this.wanted.has(partition)) return;
    const id = idOf(key);
    if (this.changed.has(id)) return;
    if (this.changed.size >= MAX_TRACKED_KEYS) {
      this.overflowed = true;
      this.changed.clear();
      return;
    }
    this.changed.set(id, { partition, key: Buffer.from(key) });
  }

  /** Keys changed since the current round began (or since tracking began). */
  get size(): number {
    return this.changed.size;
  }

  /** Starts a round with the keys changed so far and those an unfinished round had not confirmed. */
  startRound(): void {
    const keys = this.changed;
    for (const t of this.round ?? []) keys.set(idOf(t.key), t);
    this.changed = new Map();
    this.round = [...keys.values()].sort(compareTracked);
  }

  /** The round's keys at or after `from` (null: from the first); undefined when no round is under way. */
  roundFrom(from: TrackedKey | null): TrackedKey[] | undefined {
    const all = this.round;
    if (!all || !from) return all;
    let lo = 0;
    let hi = all.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compareTracked(all[mid]!, from) < 0) lo = mid + 1;
      else hi = mid;
    }
    return all.slice(lo);
  }

  /** Every key of the round was sent. */
  endRound(): void {
    this.round = undefined;
  }
}

function idOf(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
}

function compareTracked(a: TrackedKey, b: TrackedKey): number {
  return a.partition - b.partition || Buffer.compare(a.key, b.key);
}

/** A delta's cursor on the wire: partition u32 BE ‖ key. */
export function encodeTrackedCursor(c: TrackedKey): Buffer {
  const out = Buffer.allocUnsafe(4 + c.key.length);
  out.writeUInt32BE(c.partition, 0);
  out.set(c.key, 4);
  return out;
}

export function decodeTrackedCursor(bytes: Uint8Array): TrackedKey {
  if (bytes.length < 4) throw new RangeError(`a delta cursor holds at least 4 bytes, got ${bytes.length}`);
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { partition: b.readUInt32BE(0), key: b.subarray(4) };
}
