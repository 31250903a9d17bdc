// What waits to go out on one connection, kept per replica pair and handed out in turn: one pair's
// burst (a follower catching up, a snapshot) neither shuts the others out of the queue's byte
// bound nor puts their heartbeats behind all of it. Order within a pair is kept. Pure: the
// carrier decides when to take.

interface PairQueue<T> {
  items: { item: T; bytes: number }[];
  bytes: number;
}

export class FairQueue<K, T> {
  /** Insertion order is the turn order: a pair served moves to the back. */
  private readonly byKey = new Map<K, PairQueue<T>>();
  private total = 0;

  /** Bytes waiting, all pairs. */
  get bytes(): number {
    return this.total;
  }

  get isEmpty(): boolean {
    return this.byKey.size === 0;
  }

  /** Bytes waiting for `key`. */
  bytesOf(key: K): number {
    return this.byKey.get(key)?.bytes ?? 0;
  }

  push(key: K, item: T, bytes: number): void {
    let q = this.byKey.get(key);
    if (!q) {
      q = { items: [], bytes: 0 };
      this.byKey.set(key, q);
    }
    q.items.push({ item, bytes });
    q.bytes += bytes;
    this.total += bytes;
  }

  /** Hands `take` one item of each pair in turn, for as long as `more()` says. */
  take(take: (item: T) => void, more: () => boolean): void {
    while (this.byKey.size > 0 && more()) {
      const [key, q] = this.byKey.entries().next().value as [K, PairQueue<T>];
      const first = q.items.shift()!;
      q.bytes -= first.bytes;
      this.total -= first.bytes;
      this.byKey.delete(key);
      if (q.items.length > 0) this.byKey.set(key, q); // to the back of the turn
      take(first.item);
    }
  }

  /** Everything waiting, in turn order, leaving the queue empty. */
  clear(): T[] {
    const all: T[] = [];
    this.take(
      (item) => all.push(item),
      () => true,
    );
    return all;
  }
}
