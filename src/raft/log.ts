// The in-memory Raft log: entries after a base (compaction point or installed snapshot), with the
// configuration history and the bookkeeping of what is durable and what is still to be persisted.
import { decodeConf } from './conf.ts';
import { EntryType, type ConfState, type Entry, type SnapshotMeta } from './types.ts';

export class RaftLog {
  base: SnapshotMeta;
  /** entries[i] has index base.index + 1 + i. */
  private entries: Entry[];
  /** Configuration entries in the log, in index order (a config is in force once appended). */
  private confs: { index: number; conf: ConfState }[] = [];
  committed: number;
  /** Highest index handed out for application and acknowledged by advance(). */
  applied: number;
  /** Last index known durable *and* still part of this log. */
  stable: number;
  /** First index not yet handed to storage in a Ready. */
  unstableFrom: number;
  /** Lowest index truncated since the outstanding Ready was made (caps what its advance() proves). */
  truncatedSinceReady = Infinity;

  constructor(base: SnapshotMeta, entries: Entry[], commit: number, applied: number) {
    this.base = base;
    this.entries = entries;
    this.committed = Math.max(commit, base.index);
    this.applied = Math.max(applied, base.index);
    this.stable = this.lastIndex();
    this.unstableFrom = this.lastIndex() + 1;
    for (const e of entries) this.noteConf(e);
  }

  firstIndex(): number {
    return this.base.index + 1;
  }

  lastIndex(): number {
    return this.base.index + this.entries.length;
  }

  lastTerm(): number {
    return this.term(this.lastIndex()) ?? 0;
  }

  /** Term of entry i, or undefined if i is compacted away or beyond the end. */
  term(i: number): number | undefined {
    if (i === this.base.index) return this.base.term;
    if (i < this.base.index || i > this.lastIndex()) return undefined;
    return this.entries[i - this.base.index - 1]!.term;
  }

  entry(i: number): Entry | undefined {
    return this.entries[i - this.base.index - 1];
  }

  matchTerm(i: number, term: number): boolean {
    return this.term(i) === term;
  }

  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  conf(): ConfState {
    return this.confs.at(-1)?.conf ?? this.base.conf;
  }

  confAt(index: number): ConfState {
    for (let i = this.confs.length - 1; i >= 0; i--) {
      if (this.confs[i]!.index <= index) return this.confs[i]!.conf;
    }
    return this.base.conf;
  }

  /** Whether some entry of the log (after its base) is a configuration entry. */
  holdsConfEntry(): boolean {
    return this.confs.length > 0;
  }

  /** Index of the newest configuration entry (or the base). */
  lastConfIndex(): number {
    return this.confs.at(-1)?.index ?? this.base.index;
  }

  /** Entries in [lo, hi), at most maxBytes of data (but always at least one). */
  slice(lo: number, hi: number, maxBytes = Infinity): Entry[] {
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = Math.max(lo, this.firstIndex()); i < Math.min(hi, this.lastIndex() + 1); i++) {
      const e = this.entry(i)!;
      bytes += e.data.length + 16;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  append(e: Entry): void {
    this.entries.push(e);
    this.noteConf(e);
  }

  /**
   * Follower side of AppendEntries, after prev has matched: skips entries that already match and
   * truncates only at the first conflict (a duplicated or reordered old message must never delete
   * newer entries). Returns the index of the last entry of the message.
   */
  merge(prevIndex: number, ents: Entry[]): number {
    for (const e of ents) {
      if (e.index <= this.base.index) continue; // already folded into the state machine
      const t = this.term(e.index);
      if (t === e.term) continue;
      if (t !== undefined) this.truncateFrom(e.index);
      this.append(e);
    }
    return prevIndex + ents.length;
  }

  private truncateFrom(index: number): void {
    if (index <= this.committed) throw new Error(`raft: truncating committed entry ${index} (committed ${this.committed})`);
    this.entries.length = index - this.base.index - 1;
    while ((this.confs.at(-1)?.index ?? -1) >= index) this.confs.pop();
    this.stable = Math.min(this.stable, index - 1);
    this.unstableFrom = Math.min(this.unstableFrom, index);
    this.truncatedSinceReady = Math.min(this.truncatedSinceReady, index);
  }

  commitTo(index: number): boolean {
    if (index <= this.committed) return false;
    if (index > this.lastIndex()) throw new Error(`raft: commit ${index} beyond last index ${this.lastIndex()}`);
    this.committed = index;
    return true;
  }

  /** Drops entries up to `meta.index` (already applied); meta becomes the new base. */
  compact(meta: SnapshotMeta): void {
    this.entries = this.entries.slice(meta.index - this.base.index);
    this.confs = this.confs.filter((c) => c.index > meta.index);
    this.base = meta;
  }

  /** Replaces the whole log by an installed snapshot. */
  restore(meta: SnapshotMeta): void {
    this.entries = [];
    this.confs = [];
    this.base = meta;
    this.committed = meta.index;
    this.unstableFrom = meta.index + 1;
    this.truncatedSinceReady = Math.min(this.truncatedSinceReady, meta.index + 1);
    this.stable = Math.min(this.stable, meta.index);
  }

  unstableEntries(): Entry[] {
    return this.slice(this.unstableFrom, this.lastIndex() + 1);
  }

  /** Committed, durable, not yet applied. */
  nextCommitted(): Entry[] {
    return this.slice(this.applied + 1, Math.min(this.committed, this.stable) + 1);
  }

  /**
   * Largest index <= `index` whose term is <= `term`: the leader jumps there after a rejection
   * instead of walking back one entry at a time.
   */
  findConflictByTerm(index: number, term: number): number {
    let i = Math.min(index, this.lastIndex());
    while (i > this.base.index) {
      const t = this.term(i)!;
      if (t <= term) break;
      i--;
    }
    return i;
  }

  private noteConf(e: Entry): void {
    if (e.type === EntryType.Conf) this.confs.push({ index: e.index, conf: decodeConf(e.data) });
  }
}
