// Read-modify-write on one key (INCR, SET NX/XX/GET, DEL's count, APPEND) as compare-and-set.
//
// - Updates of the same key through this door are queued; whatever queued up while one CAS was in
//   flight goes in the next one together: the updates are applied in order to the value in memory
//   and one CAS moves the key from the first value to the last. So a hot counter costs one Raft
//   round per batch of INCRs, not one each, and updates never fight each other with failed CASes.
//   (Updates that wait together are concurrent, so any order among them is a valid one.)
// - The first value tried is a guess: the value the previous batch left, or a stale local read.
//   The CAS checks it; when the CAS fails its answer carries the current value, which is
//   authoritative (it was read at the CAS's place in the log).
// - When nothing in a batch writes (SET NX on an existing key, DEL of a missing one, INCR of a
//   non-number), no CAS vouches for the guess, so the outcomes stand only on an authoritative
//   value: the key is read again with a linearizable read first.
import { kvError, type KvOps } from './kv-ops.ts';

export type Decision<T> = { write: false; result: T } | { write: true; value: Uint8Array | null; result: T };

interface Pending {
  decide: (current: Uint8Array | null) => Decision<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

interface KeyQueue {
  pending: Pending[];
  /** The value the last batch left; undefined: unknown. */
  known: Uint8Array | null | undefined;
}

type Outcome = { ok: true; result: unknown } | { ok: false; error: unknown };

export class KeyUpdater {
  private readonly queues = new Map<string, KeyQueue>();

  constructor(
    private readonly kv: KvOps,
    /** CAS rounds before giving up under contention from other replicas or doors. */
    private readonly maxAttempts = 16,
    /** Most updates folded into one CAS. */
    private readonly maxBatch = 1024,
  ) {}

  update<T>(key: Uint8Array, decide: (current: Uint8Array | null) => Decision<T>): Promise<T> {
    const id = Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
    let q = this.queues.get(id);
    const idle = !q;
    if (!q) {
      q = { pending: [], known: undefined };
      this.queues.set(id, q);
    }
    const queue = q;
    const p = new Promise<T>((resolve, reject) => queue.pending.push({ decide, resolve: resolve as (v: unknown) => void, reject }));
    if (idle) void this.drain(id, key, queue);
    return p;
  }

  private async drain(id: string, key: Uint8Array, q: KeyQueue): Promise<void> {
    while (q.pending.length > 0) {
      const batch = q.pending.splice(0, this.maxBatch);
      try {
        const outcomes = await this.apply(key, q, batch);
        batch.forEach((p, i) => {
          const o = outcomes[i]!;
          if (o.ok) p.resolve(o.result);
          else p.reject(o.error);
        });
      } catch (e) {
        q.known = undefined;
        for (const p of batch) p.reject(e);
      }
    }
    this.queues.delete(id);
  }

  /** Runs the batch's decisions in order over the key's value, then makes them true with one CAS. */
  private async apply(key: Uint8Array, q: KeyQueue, batch: Pending[]): Promise<Outcome[]> {
    let current = q.known !== undefined ? q.known : await this.kv.get(key, 'stale');
    let authoritative = false;
    for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
      let value = current;
      let wrote = false;
      const outcomes: Outcome[] = batch.map((p) => {
        try {
          const d = p.decide(value);
          if (d.write) {
            // One update over the value limit fails alone: folded in, it would fail the whole CAS.
            if (d.value) this.kv.checkValue(d.value);
            value = d.value;
            wrote = true;
          }
          return { ok: true, result: d.result };
        } catch (error) {
          return { ok: false, error };
        }
      });
      if (!wrote) {
        if (authoritative) {
          q.known = current;
          return outcomes;
        }
        current = await this.kv.get(key, 'linearizable');
        authoritative = true;
        continue;
      }
      const r = await this.kv.cas(key, current, value);
      if (r.ok) {
        q.known = value;
        return outcomes;
      }
      current = r.current;
      authoritative = true;
    }
    throw kvError('UNAVAILABLE', `the key kept changing: gave up after ${this.maxAttempts} compare-and-set attempts`);
  }
}
