// What the checker sees of a node's disk: exactly what has been made durable, nothing more.
// DurableView reads it from the node's MemoryDisk (the real store's synced batches); Disk is a
// plain one for the checker's own tests.
import type { ConfState, Entry, HardState, PersistedState, SnapshotMeta } from '../../src/raft/types.ts';
import type { Env } from '../../src/storage/env.ts';
import type { MemoryDisk } from '../../src/storage/memory-env.ts';
import type { MemoryWalDisk } from '../../src/storage/memory-wal.ts';
import { readRaft } from '../../src/storage/raft-table.ts';
import { decodeReadyRecord } from '../../src/storage/ready-record.ts';
import { RaftKey, decodeIndex } from '../../src/storage/records.ts';
import { StorageError } from '../../src/storage/errors.ts';
import { recover } from '../../src/storage/recover.ts';
import { Violation } from './invariants.ts';

export interface DurableLog {
  readonly hard: HardState;
  readonly base: SnapshotMeta;
  lastIndex(): number;
  entry(i: number): Entry | undefined;
  /** Whether entry (i, term) is durable here, as an entry or folded into the log base. */
  holds(i: number, term: number): boolean;
}

abstract class LogShape implements DurableLog {
  abstract readonly hard: HardState;
  abstract readonly base: SnapshotMeta;
  protected abstract get entries(): readonly Entry[];

  lastIndex(): number {
    return this.base.index + this.entries.length;
  }

  entry(i: number): Entry | undefined {
    return this.entries[i - this.base.index - 1];
  }

  holds(i: number, term: number): boolean {
    return i <= this.base.index || this.entry(i)?.term === term;
  }
}

/** A hand-driven durable log (the checker's tests). */
export class Disk extends LogShape {
  hard: HardState = { term: 0, vote: 0, commit: 0 };
  base: SnapshotMeta;
  protected entries: Entry[] = [];

  constructor(conf: ConfState) {
    super();
    this.base = { index: 0, term: 0, conf };
  }

  /** Appends, replacing whatever was stored from the first new index on. */
  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    this.entries.length = Math.max(0, Math.min(this.entries.length, first.index - this.base.index - 1));
    for (const e of entries) this.entries.push(e);
  }
}

/** What a durable log held at one moment (the checker keeps a replaced disk's last state). */
export class FrozenLog extends LogShape {
  readonly hard: HardState;
  readonly base: SnapshotMeta;
  protected readonly entries: readonly Entry[];

  constructor(of: DurableLog & { readonly entriesHeld: readonly Entry[] }) {
    super();
    this.hard = of.hard;
    this.base = of.base;
    this.entries = of.entriesHeld;
  }
}

/** The synced state of one store of a MemoryDisk, recovered the way a restart would (re-read after each sync). */
export class DurableView extends LogShape {
  private env: Env | undefined;
  private at = '';
  private state: PersistedState | undefined;

  constructor(
    private readonly disk: MemoryDisk,
    private readonly wal: MemoryWalDisk,
    private readonly store: string,
  ) {
    super();
  }

  get hard(): HardState {
    return this.current.hardState;
  }

  get base(): SnapshotMeta {
    return this.current.base;
  }

  protected get entries(): readonly Entry[] {
    return this.current.entries;
  }

  get applied(): number {
    return this.current.applied;
  }

  /** The durable entries after the base (to freeze them: FrozenLog). */
  get entriesHeld(): readonly Entry[] {
    return this.current.entries;
  }

  /** The store keeps its blank mark (RaftConfig.blankStart): it has not caught up since it was created. */
  get blank(): boolean {
    void this.current; // opens the environment
    return readRaft(this.env!, RaftKey.blank, () => true) === true;
  }

  private get current(): PersistedState {
    const version = `${this.disk.version}/${this.wal.version}`;
    if (this.state === undefined || this.at !== version) {
      // Reads only: an environment of any life sees the synced tables.
      this.env ??= this.disk.openShared({ afterTurn: () => {}, sync: () => {} })(this.store);
      try {
        // A replaced disk holds no store until the replica starts on it.
        if (readRaft(this.env, RaftKey.base, () => true) === undefined) {
          this.state = { hardState: { term: 0, vote: 0, commit: 0 }, base: { index: 0, term: 0, conf: { voters: [], learners: [] } }, entries: [], applied: 0 };
          this.at = version;
          return this.state;
        }
        this.state = withLog(recover(this.env).state, readRaft(this.env, RaftKey.walSeq, decodeIndex) ?? 0, this.wal.records(this.store));
      } catch (e) {
        if (!(e instanceof StorageError) && !(e instanceof Violation)) throw e;
        throw e instanceof Violation ? e : new Violation('ready-contract', `a restart would not open this store: ${e.message}`);
      }
      this.at = version;
    }
    return this.state;
  }
}

/**
 * The state a restart rebuilds: LMDB's, then every synced log record after the last one LMDB
 * holds, in order (each replaces the stored entries from its first on and sets the hard state).
 */
function withLog(state: PersistedState, held: number, records: readonly { seq: number; payload: Uint8Array }[]): PersistedState {
  let { hardState, entries } = state;
  let expected = held + 1;
  for (const r of records) {
    if (r.seq <= held) continue;
    if (r.seq !== expected) throw new Violation('ready-contract', `a restart would not open this store: the log continues at record ${r.seq}, LMDB holds through ${held}`);
    expected++;
    const rec = decodeReadyRecord(r.payload);
    const first = rec.entries[0];
    if (first) entries = [...entries.slice(0, Math.max(0, first.index - state.base.index - 1)), ...rec.entries];
    if (rec.hardState) hardState = rec.hardState;
  }
  if (entries === state.entries && hardState === state.hardState) return state;
  return { ...state, hardState: { ...hardState, commit: Math.max(hardState.commit, state.applied) }, entries };
}
