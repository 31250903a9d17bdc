// The keys of some partitions that committed writes touched since a hand-off's pre-copy began, so
// that only those keys travel again (resharding/source.ts). Pure: fed keys in log order. A delta
// round takes the keys changed so far (plus those of an unfinished earlier round) sorted by
// (partition, key), the order of its chunks, and tracking starts afresh for the next round.
// Rounds are numbered by the destination: asked again for the round it last started (its answer
// was lost and the request resent), the tracker replays that round's keys instead of starting a
// new one, which would leave them out for good.

/** More changed keys than this and the delta is no cheaper than a full copy: stop tracking. */
export const MAX_TRACKED_KEYS = 1_000_000;

export interface TrackedKey {
  partition: number;
  key: Uint8Array;
}

export class ChangeTracker {
  private readonly wanted: ReadonlySet<number>;
  private changed = new Map<string, TrackedKey>();
  /** The keys of the last round started, sorted; undefined before the first. */
  private round: TrackedKey[] | undefined;
  /** The number of the last round started (0: none yet), and whether all of it was sent. */
  private roundNumber = 0;
  private roundSent = false;
  /** Set when more keys changed than MAX_TRACKED_KEYS: the tracker can no longer answer. */
  overflowed = false;
  lastUsed: number;

  constructor(
    /** The source's leadership term when tracking began: a delta needs the same unbroken term. */
    readonly term: number,
    partitions: readonly number[],
    private readonly partitionOf: (key: Uint8Array) => number,
    now: number,
    /** The destination's attempt (copy id) this tracking is for. */
    readonly copy = 0,
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

  /** The number of the last round started (0: none yet). */
  get lastRound(): number {
    return this.roundNumber;
  }

  /**
   * Starts round `n`: the next one takes the keys changed so far (and those of an earlier round
   * not sent in full); the last one started is replayed, its keys as they were (its answer was
   * lost). False for any other number.
   */
  startRound(n: number): boolean {
    if (n === this.roundNumber && this.round) return true;
    if (n !== this.roundNumber + 1) return false;
    const keys = this.changed;
    if (!this.roundSent) for (const t of this.round ?? []) keys.set(idOf(t.key), t);
    this.changed = new Map();
    this.round = [...keys.values()].sort(compareTracked);
    this.roundNumber = n;
    this.roundSent = false;
    return true;
  }

  /** Round `n`'s keys at or after `from` (null: from the first); undefined unless `n` is the last round started. */
  roundFrom(n: number, from: TrackedKey | null): TrackedKey[] | undefined {
    const all = n === this.roundNumber ? this.round : undefined;
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

  /** Every key of the round was sent (it is kept for a replay until the next round starts). */
  endRound(): void {
    this.roundSent = true;
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
