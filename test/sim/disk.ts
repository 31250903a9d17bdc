// One node's durable state: exactly what has been persisted through Ready, nothing more. A crash
// keeps the disk and loses everything else.
import type { ConfState, Entry, HardState, PersistedState, SnapshotMeta } from '../../src/raft/types.ts';
import { Kv } from './kv.ts';

export class Disk {
  hard: HardState = { term: 0, vote: 0, commit: 0 };
  base: SnapshotMeta;
  /** Entries base.index + 1 .. lastIndex, contiguous. */
  entries: Entry[] = [];
  /** The state machine; its applied index is written with the writes it covers. */
  kv = new Kv();
  /** An incoming snapshot being assembled from chunks. */
  staged: { meta: SnapshotMeta; parts: Uint8Array[] } | undefined;

  constructor(conf: ConfState) {
    this.base = { index: 0, term: 0, conf };
  }

  lastIndex(): number {
    return this.base.index + this.entries.length;
  }

  entry(i: number): Entry | undefined {
    return this.entries[i - this.base.index - 1];
  }

  termAt(i: number): number | undefined {
    if (i === this.base.index) return this.base.term;
    return this.entry(i)?.term;
  }

  /** Whether entry (i, term) is durable here, as an entry or folded into the state machine. */
  holds(i: number, term: number): boolean {
    return i <= this.base.index || this.entry(i)?.term === term;
  }

  /** Appends, replacing whatever was stored from the first new index on. */
  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    this.entries.length = Math.max(0, Math.min(this.entries.length, first.index - this.base.index - 1));
    for (const e of entries) this.entries.push(e);
  }

  /** Drops entries up to meta.index, which becomes the base. */
  compact(meta: SnapshotMeta): void {
    this.entries = this.entries.slice(Math.max(0, meta.index - this.base.index));
    this.base = meta;
  }

  persisted(): PersistedState {
    return {
      hardState: { ...this.hard },
      base: this.base,
      entries: [...this.entries],
      applied: this.kv.applied,
    };
  }
}
