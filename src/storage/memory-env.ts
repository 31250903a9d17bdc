// The storage environment in memory, with LMDB's commit and crash semantics, so the real
// ReplicaStore (and everything above it) runs unchanged in the simulator:
//  - writes issued in one turn form one batch (one transaction); a batch starts at the end of the
//    turn, while no other batch is committing, and its child transactions run then, reading the
//    batch's earlier writes;
//  - a batch becomes visible and durable at once, when its sync completes; only then do its
//    promises settle; reads outside a transaction see only synced batches;
//  - a crash (MemoryDisk.crash) loses every batch not synced yet, and the environments of the
//    crashed process go silent: their writes vanish and their promises never settle.
// When a batch starts and when its sync completes is the caller's (the simulator's event queue).
// Like a shared LMDB environment (shared-env.ts), one environment can hold several stores, each a
// set of databases named `<store>/<name>`: their writes of one turn share one batch and one sync.
import { DATABASES, type Bin, type Env } from './env.ts';

/** A database's records: hex of the key (sorts like the bytes) to the stored value. */
type Table = Map<string, Bin>;
type Tables = Map<string, Table>;

/** Writes of one transaction layer to one database. */
interface Layer {
  cleared: boolean;
  writes: Map<string, Bin | null>;
}
type Overlay = Map<string, Layer>;

type Op =
  | { kind: 'put'; db: string; key: string; value: Bin | null; settle: (v: unknown) => void }
  | { kind: 'clear'; db: string; settle: (v: unknown) => void }
  | { kind: 'child'; run: () => unknown; settle: (v: unknown) => void; fail: (e: unknown) => void };

interface Batch {
  ops: Op[];
  overlay: Overlay;
  settled: (() => void)[];
  done: Promise<void>;
  finish: () => void;
}

/** When work of the environment happens: the simulator's event queue, or a test's hand. */
export interface DiskTiming {
  /** Run `fn` after the current turn (lmdb-js starts a batch when the issuing turn ends). */
  afterTurn(fn: () => void): void;
  /** Run `fn` when the sync of a started batch completes (any time later, in start order). */
  sync(fn: () => void): void;
}

interface RangeOptions {
  start?: Bin;
  end?: Bin;
  limit?: number;
  reverse?: boolean;
  transaction?: ReadTxn;
}

interface ReadTxn {
  tables: Tables;
  done(): void;
}

const hex = (k: Uint8Array): string => Buffer.from(k.buffer, k.byteOffset, k.byteLength).toString('hex');
const copy = (v: Uint8Array): Bin => Buffer.from(v);

/** What a machine keeps across crashes: every synced batch of its store. */
export class MemoryDisk {
  readonly durable: Tables = new Map(DATABASES.map((name) => [name, new Map()]));
  /** Counts crashes: environments of an earlier life are dead. */
  life = 0;
  /** Synced batches so far (changes whenever the durable state does). */
  version = 0;
  /** Called after each synced batch (the simulator checks what became durable). */
  onSync: (() => void) | undefined;

  /** The process dies: unsynced batches are lost, its environments stop. */
  crash(): void {
    this.life++;
  }

  /**
   * The disk is replaced by an empty one (the simulator's disk replacement): every store is gone,
   * and the environments of the process living now stop, as after a crash.
   */
  wipe(): void {
    this.life++;
    for (const t of this.durable.values()) t.clear();
    this.version++;
  }

  /** An environment for the process living now, holding one store. */
  open(timing: DiskTiming, dataFile = 'memory'): Env {
    return new MemoryEnv(this, timing).store('', dataFile);
  }

  /** An environment for the process living now, shared by stores: `store(name)` opens one. */
  openShared(timing: DiskTiming): (store: string) => Env {
    const env = new MemoryEnv(this, timing);
    return (store) => env.store(`${store}/`, `memory:${store}`);
  }

  /** A database's synced records (created empty on first use, like a named LMDB database). */
  table(db: string): Table {
    let t = this.durable.get(db);
    if (!t) this.durable.set(db, (t = new Map()));
    return t;
  }

  /** Applies a committed layer to the durable tables. */
  commit(overlay: Overlay): void {
    for (const [db, layer] of overlay) {
      const table = this.table(db);
      if (layer.cleared) table.clear();
      for (const [k, v] of layer.writes) {
        if (v === null) table.delete(k);
        else table.set(k, v);
      }
    }
    this.version++;
    this.onSync?.();
  }
}

class MemoryEnv {
  private readonly life: number;
  private readonly root: unknown;
  private open: Batch | undefined;
  private running: Batch | undefined;
  /** Transaction layers being executed, innermost last: reads and writes go through them. */
  private layers: Overlay[] = [];

  constructor(
    private readonly disk: MemoryDisk,
    private readonly timing: DiskTiming,
  ) {
    this.life = disk.life;
    const flushed = (): Promise<void> => this.flushed();
    this.root = {
      transactionSync: <T>(fn: () => T): T => this.transactionSync(fn),
      childTransaction: <T>(fn: () => T): Promise<T> => this.child(fn),
      get flushed(): Promise<void> {
        return flushed();
      },
      useReadTransaction: (): ReadTxn => ({ tables: new Map([...disk.durable].map(([n, t]) => [n, new Map(t)])), done: () => {} }),
      getStats: () => ({}),
      close: () => Promise.resolve(),
    };
  }

  /** One store's databases, named with `prefix`, over this environment's batches. */
  store(prefix: string, dataFile: string): Env {
    const db = (name: string): unknown => this.database(prefix + name);
    const generation = (g: 0 | 1): unknown => ({ kv: db(`kv.${g}`), sessions: db(`sessions.${g}`), meta: db(`meta.${g}`) });
    return { root: this.root, log: db('log'), raft: db('raft'), generations: [generation(0), generation(1)], dataFile, close: () => Promise.resolve() } as unknown as Env;
  }

  private get alive(): boolean {
    return this.disk.life === this.life;
  }

  private database(name: string): unknown {
    return {
      get: (key: Bin, opts?: { transaction?: ReadTxn }): Bin | undefined => this.get(name, hex(key), opts?.transaction),
      put: (key: Bin, value: Uint8Array): Promise<boolean> => this.write(name, hex(key), copy(value)),
      remove: (key: Bin): Promise<boolean> => this.write(name, hex(key), null),
      clearAsync: (): Promise<unknown> => this.clear(name),
      getRange: (opts: RangeOptions = {}): { key: Bin; value: Bin }[] =>
        this.range(name, opts).map(([k, value]) => ({ key: Buffer.from(k, 'hex'), value })),
      getKeys: (opts: RangeOptions = {}): Bin[] => this.range(name, opts).map(([k]) => Buffer.from(k, 'hex')),
      getStats: () => ({ entryCount: this.view(name, undefined).size }),
    };
  }

  // ---- Reads ---------------------------------------------------------------------------------------

  private get(db: string, key: string, txn: ReadTxn | undefined): Bin | undefined {
    if (txn) return txn.tables.get(db)?.get(key);
    for (let i = this.layers.length - 1; i >= 0; i--) {
      const layer = this.layers[i]!.get(db);
      if (!layer) continue;
      const v = layer.writes.get(key);
      if (v !== undefined) return v ?? undefined;
      if (layer.cleared) return undefined;
    }
    return this.disk.table(db).get(key);
  }

  /** The table as this context sees it (synced state under the executing layers). */
  private view(db: string, txn: ReadTxn | undefined): Table {
    if (txn) return txn.tables.get(db) ?? new Map();
    const layers = this.layers.map((o) => o.get(db)).filter((l): l is Layer => l !== undefined);
    const durable = this.disk.table(db);
    if (layers.length === 0) return durable;
    const out = new Map(durable);
    for (const l of layers) {
      if (l.cleared) out.clear();
      for (const [k, v] of l.writes) {
        if (v === null) out.delete(k);
        else out.set(k, v);
      }
    }
    return out;
  }

  private range(db: string, o: RangeOptions): [string, Bin][] {
    const table = this.view(db, o.transaction);
    const keys = [...table.keys()].sort();
    if (o.reverse) keys.reverse();
    const start = o.start ? hex(o.start) : undefined;
    const end = o.end ? hex(o.end) : undefined;
    const out: [string, Bin][] = [];
    for (const k of keys) {
      if (o.limit !== undefined && out.length >= o.limit) break;
      if (o.reverse ? (start !== undefined && k > start) || (end !== undefined && k <= end) : (start !== undefined && k < start) || (end !== undefined && k >= end)) {
        continue;
      }
      out.push([k, table.get(k)!]);
    }
    return out;
  }

  // ---- Writes --------------------------------------------------------------------------------------

  private write(db: string, key: string, value: Bin | null): Promise<boolean> {
    const top = this.layers.at(-1);
    if (top) {
      layerOf(top, db).writes.set(key, value);
      return Promise.resolve(true);
    }
    return this.enqueue((settle) => ({ kind: 'put', db, key, value, settle })).then(() => true);
  }

  private clear(db: string): Promise<unknown> {
    const top = this.layers.at(-1);
    if (top) {
      const l = layerOf(top, db);
      l.cleared = true;
      l.writes.clear();
      return Promise.resolve();
    }
    return this.enqueue((settle) => ({ kind: 'clear', db, settle }));
  }

  private child<T>(run: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (!this.alive) return;
      const op: Op = { kind: 'child', run, settle: (v) => resolve(v as T), fail: reject };
      this.batch().ops.push(op);
    });
  }

  private transactionSync<T>(fn: () => T): T {
    const overlay: Overlay = new Map();
    this.layers.push(overlay);
    try {
      const result = fn();
      if (this.alive) this.disk.commit(overlay);
      return result;
    } finally {
      this.layers.pop();
    }
  }

  private flushed(): Promise<void> {
    const last = this.open ?? this.running;
    return last ? last.done : Promise.resolve();
  }

  private enqueue(make: (settle: (v: unknown) => void) => Op): Promise<unknown> {
    return new Promise((resolve) => {
      if (!this.alive) return; // a dead process writes nothing, and hears nothing back
      this.batch().ops.push(make(resolve));
    });
  }

  /** The batch collecting this turn's writes. */
  private batch(): Batch {
    if (this.open) return this.open;
    let finish!: () => void;
    const done = new Promise<void>((r) => (finish = r));
    const b: Batch = { ops: [], overlay: new Map(), settled: [], done, finish };
    this.open = b;
    if (!this.running) this.timing.afterTurn(() => this.start());
    return b;
  }

  /** Runs the open batch's writes and child transactions, then waits for its sync. */
  private start(): void {
    if (!this.alive || this.running || !this.open) return;
    const b = (this.running = this.open);
    this.open = undefined;
    this.layers = [b.overlay];
    try {
      for (const op of b.ops) {
        if (op.kind === 'put') {
          layerOf(b.overlay, op.db).writes.set(op.key, op.value);
          b.settled.push(() => op.settle(true));
        } else if (op.kind === 'clear') {
          const l = layerOf(b.overlay, op.db);
          l.cleared = true;
          l.writes.clear();
          b.settled.push(() => op.settle(undefined));
        } else {
          const childLayer: Overlay = new Map();
          this.layers.push(childLayer);
          try {
            const result = op.run();
            mergeInto(b.overlay, childLayer);
            b.settled.push(() => op.settle(result));
          } catch (e) {
            b.settled.push(() => op.fail(e)); // an aborted child transaction: none of its writes
          } finally {
            this.layers.pop();
          }
        }
      }
    } finally {
      this.layers = [];
    }
    this.timing.sync(() => this.synced(b));
  }

  private synced(b: Batch): void {
    if (!this.alive) return;
    this.disk.commit(b.overlay);
    this.running = undefined;
    for (const s of b.settled) s();
    b.finish();
    if (this.open) this.start();
  }
}

function layerOf(o: Overlay, db: string): Layer {
  let l = o.get(db);
  if (!l) o.set(db, (l = { cleared: false, writes: new Map() }));
  return l;
}

function mergeInto(into: Overlay, from: Overlay): void {
  for (const [db, l] of from) {
    const target = layerOf(into, db);
    if (l.cleared) {
      target.cleared = true;
      target.writes.clear();
    }
    for (const [k, v] of l.writes) target.writes.set(k, v);
  }
}
