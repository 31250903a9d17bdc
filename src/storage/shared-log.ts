// One write-ahead log for every store of a process. The replicas a `kvs up` host process holds
// share one LMDB environment (shared-env.ts) and, through this, one log: every hosted group's
// Readies of a turn go to one file and are made durable by one fdatasync, where a log per store
// paid one per group.
//
// A record of the shared log wraps a store's record: store name ‖ the store's own sequence number
// ‖ its payload. Each store sees a log of its own (a view) whose sequence numbers are contiguous,
// so its `wal-seq` in LMDB and the gap check of a replay mean what they mean with a log of its
// own. The shared log drops a segment once every store has released the records it holds.
//
// Opening replays every store's records into that store's databases (replay.ts) and releases the
// whole log, so a store that is never opened again (a removed replica) pins nothing.
import { readU64, writeU64 } from './bytes.ts';
import type { Env } from './env.ts';
import { StorageCorruptionError, StorageError } from './errors.ts';
import { replayLog } from './replay.ts';
import type { OpenedWal, Wal } from './wal.ts';
import type { WalRecord } from './wal-codec.ts';

const NAME_MAX_BYTES = 255;

/** A store's record as the shared log holds it. */
export function wrapRecord(store: string, seq: number, payload: Uint8Array): Uint8Array {
  const name = Buffer.from(store, 'utf8');
  if (name.length > NAME_MAX_BYTES) throw new StorageError(`store name ${store} is longer than ${NAME_MAX_BYTES} bytes`);
  const out = Buffer.allocUnsafe(1 + name.length + 8 + payload.length);
  out[0] = name.length;
  name.copy(out, 1);
  writeU64(out, 1 + name.length, seq);
  out.set(payload, 1 + name.length + 8);
  return out;
}

/** The store and the store's own record inside a record of the shared log in `where`. */
export function unwrapRecord(r: WalRecord, where: string): { store: string; record: WalRecord } {
  const p = r.payload;
  const nameEnd = 1 + (p[0] ?? 0);
  if (p.length === 0 || nameEnd + 8 > p.length) {
    throw new StorageCorruptionError(where, undefined, `record ${r.seq} of the shared log is too short to name a store and its record`);
  }
  const store = Buffer.from(p.buffer, p.byteOffset + 1, nameEnd - 1).toString('utf8');
  return { store, record: { seq: readU64(p, nameEnd), payload: p.subarray(nameEnd + 8) } };
}

/** The records of `store` among a shared log's, as a log of the store's own would hold them. */
export function recordsOf(store: string, records: readonly WalRecord[], where = 'the shared log'): WalRecord[] {
  return records.map((r) => unwrapRecord(r, where)).flatMap((u) => (u.store === store ? [u.record] : []));
}

/** A record of a store appended in this life and not yet released by it. */
interface Pending {
  seq: number;
  /** Its sequence number in the shared log. */
  at: number;
  payload: Uint8Array;
}

interface StoreState {
  last: number;
  pending: Pending[];
  open: boolean;
}

export class SharedLog {
  private readonly stores = new Map<string, StoreState>();

  /** Use shareLog(). */
  constructor(private readonly log: Wal) {}

  /**
   * The log of `store`, whose databases hold its records through `after`. Its records are the
   * ones an earlier view of this life appended and did not release (opening replayed the rest).
   */
  view(store: string, after: number): OpenedWal {
    let state = this.stores.get(store);
    if (!state) this.stores.set(store, (state = { last: 0, pending: [], open: false }));
    if (state.open) throw new StorageError(`store ${store} has the shared log open already`);
    state.open = true;
    state.last = Math.max(state.last, after);
    const records = state.pending.filter((p) => p.seq > after).map((p) => ({ seq: p.seq, payload: p.payload }));
    return { wal: new StoreLog(this.log, store, state, () => this.release()), records };
  }

  close(): Promise<void> {
    return this.log.close();
  }

  /** Drops what every store has released: all before the oldest record some store still needs. */
  private release(): void {
    let through = this.log.lastSeq;
    for (const s of this.stores.values()) if (s.pending[0]) through = Math.min(through, s.pending[0].at - 1);
    this.log.release(through);
  }
}

/** One store's view of the shared log. */
class StoreLog implements Wal {
  private closed = false;

  constructor(
    private readonly log: Wal,
    private readonly store: string,
    private readonly state: StoreState,
    private readonly released: () => void,
  ) {}

  get lastSeq(): number {
    return this.state.last;
  }

  append(payload: Uint8Array): { seq: number; durable: Promise<void> } {
    if (this.closed) throw new StorageError(`the log of store ${this.store} is closed`);
    const seq = this.state.last + 1;
    const { seq: at, durable } = this.log.append(wrapRecord(this.store, seq, payload));
    this.state.last = seq;
    this.state.pending.push({ seq, at, payload });
    return { seq, durable };
  }

  release(seq: number): void {
    const pending = this.state.pending;
    let n = 0;
    while (n < pending.length && pending[n]!.seq <= seq) n++;
    if (n === 0) return;
    pending.splice(0, n);
    this.released();
  }

  /** What it did not release stays pinned, for a later view of this life or the next open's replay. */
  close(): Promise<void> {
    if (!this.closed) this.state.open = false;
    this.closed = true;
    return Promise.resolve();
  }
}

/**
 * Takes the shared log as opened (`where` names it in errors): replays every store's records into
 * the databases `envOf` gives for it, durably, then releases the whole log. A record of a store the
 * environment does not have is corruption: a store's databases exist before its first Ready.
 */
export function shareLog(opened: OpenedWal, envOf: (store: string) => Env | undefined, where: string): SharedLog {
  const byStore = new Map<string, WalRecord[]>();
  for (const r of opened.records) {
    const { store, record } = unwrapRecord(r, where);
    let list = byStore.get(store);
    if (!list) byStore.set(store, (list = []));
    list.push(record);
  }
  for (const [store, records] of byStore) {
    const env = envOf(store);
    if (!env) throw new StorageCorruptionError(where, undefined, `the shared log holds records of store ${store}, which the environment does not have`);
    replayLog(env, records);
  }
  opened.wal.release(opened.wal.lastSeq);
  return new SharedLog(opened.wal);
}
