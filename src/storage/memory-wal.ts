// The write-ahead log in memory, with the file log's crash rule, for the simulator: an appended
// record is durable only once its sync completes; a crash (MemoryWalDisk.crash) loses every record
// not synced yet, and the log of the crashed process goes silent (its promises never settle).
// When a sync completes is the caller's (the simulator's event queue), as for MemoryDisk.
import { StorageError } from './errors.ts';
import type { DiskTiming } from './memory-env.ts';
import type { OpenedWal, Wal } from './wal.ts';
import type { WalRecord } from './wal-codec.ts';

/** What a machine keeps across crashes: each store's synced records. */
export class MemoryWalDisk {
  private readonly durable = new Map<string, WalRecord[]>();
  /** Sequence numbers a log with no records starts after (what release left behind). */
  private readonly released = new Map<string, number>();
  /** Counts crashes: logs of an earlier life are dead. */
  life = 0;
  /** Called after each sync (the simulator checks what became durable). */
  onSync: (() => void) | undefined;

  crash(): void {
    this.life++;
  }

  /** The disk is replaced by an empty one: every log is gone, and the logs of the process living now stop. */
  wipe(): void {
    this.life++;
    this.durable.clear();
    this.released.clear();
    this.version++;
  }

  /** The synced records of `store`, oldest first. */
  records(store: string): readonly WalRecord[] {
    return this.durable.get(store) ?? [];
  }

  /** Synced records and releases so far (changes whenever the durable log does). */
  version = 0;

  /** Opens the log of `store` for the process living now; the store holds every record through `after`. */
  open(store: string, timing: DiskTiming, after = 0): OpenedWal {
    let records = [...this.records(store)];
    if (records.length > 0 && records.at(-1)!.seq < after) {
      this.durable.set(store, []);
      records = [];
    }
    const last = records.at(-1)?.seq ?? Math.max(this.released.get(store) ?? 0, after);
    return { wal: new MemoryWal(this, store, timing, last), records };
  }

  /** @internal */
  synced(store: string, records: WalRecord[]): void {
    let list = this.durable.get(store);
    if (!list) this.durable.set(store, (list = []));
    list.push(...records);
    this.version++;
    this.onSync?.();
  }

  /** @internal */
  release(store: string, seq: number): void {
    const list = this.durable.get(store);
    if (!list) return;
    const keep = list.filter((r) => r.seq > seq);
    const dropped = list.length - keep.length;
    if (dropped === 0) return;
    this.released.set(store, Math.max(this.released.get(store) ?? 0, list[dropped - 1]!.seq));
    this.durable.set(store, keep);
    this.version++;
  }
}

class MemoryWal implements Wal {
  private readonly life: number;
  private pending: WalRecord[] = [];
  private syncScheduled = false;
  /** A sync is running: appends wait for the next one. */
  private syncing = false;
  private waiters: { seq: number; resolve: () => void }[] = [];
  private closed = false;

  constructor(
    private readonly disk: MemoryWalDisk,
    private readonly store: string,
    private readonly timing: DiskTiming,
    private last: number,
  ) {
    this.life = disk.life;
  }

  get lastSeq(): number {
    return this.last;
  }

  append(payload: Uint8Array): { seq: number; durable: Promise<void> } {
    if (this.closed) throw new StorageError('the log is closed');
    const seq = ++this.last;
    this.pending.push({ seq, payload: Uint8Array.from(payload) });
    const durable = new Promise<void>((resolve) => this.waiters.push({ seq, resolve }));
    this.scheduleSync();
    return { seq, durable };
  }

  release(seq: number): void {
    if (this.alive) this.disk.release(this.store, seq);
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  private get alive(): boolean {
    return this.disk.life === this.life;
  }

  /**
   * Like the file log: one sync at a time, each for whatever was appended before it started;
   * records appended while one runs wait for the next (several stores of a process share a log,
   * so appends do arrive while a sync runs). A sync must never make a later one's records durable.
   */
  private scheduleSync(): void {
    if (this.syncScheduled || this.syncing) return;
    this.syncScheduled = true;
    this.timing.afterTurn(() => this.sync());
  }

  private sync(): void {
    this.syncScheduled = false;
    const batch = this.pending;
    this.pending = [];
    const through = batch.at(-1)?.seq ?? 0;
    this.syncing = true;
    this.timing.sync(() => {
      if (!this.alive) return; // lost with the process: never durable, never answered
      this.syncing = false;
      this.disk.synced(this.store, batch);
      const done = this.waiters.filter((w) => w.seq <= through);
      this.waiters = this.waiters.filter((w) => w.seq > through);
      for (const w of done) w.resolve();
      if (this.pending.length > 0) this.scheduleSync();
    });
  }
}
