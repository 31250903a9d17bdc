// The state machine's tables as one apply batch sees them: what is committed, overlaid with what
// the batch has written so far. The batch runs on the main thread against committed state and hands
// its writes to LMDB only at the end, instead of inside a child transaction that LMDB's write
// thread must call back into JavaScript to run. That callback cost two thread hand-offs per apply
// and held every answer until the write thread had opened the batch (docs/storage.md, "Apply").
import { asBuffer } from './bytes.ts';
import { decodeSession, encodeSession, type SessionRecord } from './session-codec.ts';
import type { Tables } from './tables.ts';

/** What the state machine's transition function (apply.ts) reads and writes. */
export interface StateTables {
  getKv(key: Uint8Array): Uint8Array | null;
  putKv(key: Uint8Array, value: Uint8Array): void;
  deleteKv(key: Uint8Array): void;
  getSession(clientId: Uint8Array): SessionRecord | undefined;
  putSession(clientId: Uint8Array, s: SessionRecord): void;
  deleteSession(clientId: Uint8Array): void;
  putMeta(name: string, value: Uint8Array | null): void;
  range(table: 'sessions', opts: Record<string, never>): Iterable<{ key: Buffer; body: Uint8Array }>;
}

type Table = 'kv' | 'sessions' | 'meta';

interface Write {
  key: Buffer;
  /** The unsealed body; null: removed. */
  body: Uint8Array | null;
}

export class StagedTables implements StateTables {
  private readonly writes: Record<Table, Map<string, Write>> = { kv: new Map(), sessions: new Map(), meta: new Map() };

  /** Set once this batch's writes are committed: later batches read the base directly. */
  private done = false;

  constructor(
    private readonly base: Tables,
    /** The batch before, while it is still committing: this one reads through its writes. */
    private below?: StagedTables,
  ) {}

  get committed(): boolean {
    return this.done;
  }

  /** The batch's writes are in the base now: nothing needs to read through them any more. */
  markCommitted(): void {
    this.done = true;
    this.below = undefined;
    for (const m of Object.values(this.writes)) m.clear();
  }

  /** This batch's write of the key, else the newest one of the batches below still committing. */
  private find(table: Table, k: string): Write | undefined {
    const own = this.writes[table].get(k);
    if (own) return own;
    for (let t = this.below; t && !t.committed; t = t.below) {
      const w = t.writes[table].get(k);
      if (w) return w;
    }
    return undefined;
  }

  getKv(key: Uint8Array): Uint8Array | null {
    const w = this.find('kv', id(key));
    return w ? w.body : this.base.getKv(key);
  }

  putKv(key: Uint8Array, value: Uint8Array): void {
    this.stage('kv', key, value);
  }

  deleteKv(key: Uint8Array): void {
    this.stage('kv', key, null);
  }

  getSession(clientId: Uint8Array): SessionRecord | undefined {
    const w = this.find('sessions', id(clientId));
    if (!w) return this.base.getSession(clientId);
    return w.body ? decodeSession(w.body) : undefined;
  }

  putSession(clientId: Uint8Array, s: SessionRecord): void {
    this.stage('sessions', clientId, encodeSession(s));
  }

  deleteSession(clientId: Uint8Array): void {
    this.stage('sessions', clientId, null);
  }

  putMeta(name: string, value: Uint8Array | null): void {
    this.stage('meta', Buffer.from(name, 'utf8'), value);
  }

  /** Committed sessions with this batch's writes applied, in key order. */
  *range(table: 'sessions'): Iterable<{ key: Buffer; body: Uint8Array }> {
    const staged = new Map<string, Write>();
    const below: StagedTables[] = [];
    for (let t = this.below; t && !t.committed; t = t.below) below.unshift(t);
    for (const t of [...below, this]) for (const [k, w] of t.writes[table]) staged.set(k, w);
    const out: { key: Buffer; body: Uint8Array }[] = [];
    for (const { key, body } of this.base.range(table, {})) if (!staged.has(id(key))) out.push({ key, body });
    for (const w of staged.values()) if (w.body) out.push({ key: w.key, body: w.body });
    yield* out.sort((a, b) => Buffer.compare(a.key, b.key));
  }

  /** Queues every write of the batch into LMDB's current batch; `track` gets each commit promise. */
  writeTo(track: (p: Promise<unknown>) => void): void {
    for (const w of this.writes.kv.values()) track(w.body ? this.base.putKv(w.key, w.body) : this.base.deleteKv(w.key));
    for (const w of this.writes.sessions.values()) track(w.body ? this.base.putSessionBody(w.key, w.body) : this.base.deleteSession(w.key));
    for (const w of this.writes.meta.values()) track(this.base.putMeta(w.key.toString('utf8'), w.body));
  }

  private stage(table: Table, key: Uint8Array, body: Uint8Array | null): void {
    const k = asBuffer(key);
    this.writes[table].set(id(k), { key: Buffer.from(k), body });
  }
}

/** A map key for a byte string (latin1: one char per byte, no hex doubling). */
function id(key: Uint8Array): string {
  return asBuffer(key).toString('latin1');
}
