// One replica's durable state in one LMDB environment: the Raft log and hard state (persist),
// the state machine (apply, reads) and snapshots (SnapshotSource, staging and install).
import type { ConfState, PersistedState, Ready, SnapshotMeta } from '../raft/types.ts';
import { applyCommands } from './apply.ts';
import type { Book } from './book.ts';
import { indexKey } from './bytes.ts';
import { DATABASES, openDatabases, openRoot, type Env } from './env.ts';
import { StorageCorruptionError, StorageError, StoreFailedError } from './errors.ts';
import { resolveLimits, type Limits } from './limits.ts';
import { decodeEntry } from './log-codec.ts';
import { checkDataSize, locateFiles, newStoreId, writeId, type StoreFiles } from './preflight.ts';
import { putRaft, readRaft } from './raft-table.ts';
import { planReady } from './ready-plan.ts';
import { writePlan } from './ready-write.ts';
import {
  FORMAT_VERSION,
  RaftKey,
  decodeFormat,
  encodeFormat,
  encodeGeneration,
  encodeHardState,
  encodeIndex,
  encodeSnapshotMeta,
} from './records.ts';
import { recover } from './recover.ts';
import { checkStructure } from './structure-check.ts';
import { SnapshotReader } from './snapshot-source.ts';
import { Tables } from './tables.ts';
import { TABLES } from './snapshot-image.ts';
import type { Command, CommandResult, KeyValue, SessionInfo } from './types.ts';

export interface ReplicaStoreOptions {
  /** Directory of the environment; created if missing. */
  path: string;
  limits?: Partial<Limits>;
  /** Ask LMDB to count time spent in commits and syncs (see metrics()). */
  trackMetrics?: boolean;
  /** lmdb-js overlappingSync; off by default and in every test (docs/storage.md says why). */
  overlappingSync?: boolean;
  /**
   * Walk every database in a child process before opening (default true): damaged LMDB pages
   * then give a StorageCorruptionError instead of a SIGSEGV later. Costs one read of the file.
   */
  checkStructure?: boolean;
}

export function openReplicaStore(options: ReplicaStoreOptions): ReplicaStore {
  const files = locateFiles(options.path);
  const root = openRoot(options.path, {
    trackMetrics: options.trackMetrics ?? false,
    overlappingSync: options.overlappingSync ?? false,
  });
  try {
    const shortfall = checkDataSize(root, files.dataFile);
    const noted = (e: unknown): unknown =>
      shortfall && e instanceof StorageCorruptionError ? new StorageCorruptionError(e.file, e.index, `${detailOf(e)}; ${shortfall}`) : e;
    if (files.id && options.checkStructure !== false) {
      try {
        checkStructure(options.path, files.dataFile, DATABASES);
      } catch (e) {
        throw noted(e);
      }
    }
    let env: Env;
    try {
      env = openDatabases(root, files.dataFile);
    } catch (e) {
      throw noted(new StorageCorruptionError(files.dataFile, undefined, `LMDB cannot open its databases (${(e as Error).message})`));
    }
    initialise(env, files);
    return new ReplicaStore(env, options, shortfall);
  } catch (e) {
    void root.close();
    throw e;
  }
}

/** The message of a corruption error without its "storage corruption in <file>: " prefix. */
function detailOf(e: StorageCorruptionError): string {
  const prefix = `storage corruption in ${e.file}${e.index === undefined ? '' : ` at log index ${e.index}`}: `;
  return e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message;
}

/** Writes the records of a new store, or checks that the data file belongs to the store named beside it. */
function initialise(env: Env, files: StoreFiles): void {
  const format = readRaft(env, RaftKey.format, decodeFormat);
  if (!format) {
    if (files.id) {
      throw new StorageCorruptionError(files.dataFile, undefined, `the data file holds no store, but store ${files.id.toString('hex')} was created here`);
    }
    const id = newStoreId();
    env.root.transactionSync(() => {
      void putRaft(env, RaftKey.format, encodeFormat(id));
      void putRaft(env, RaftKey.generation, encodeGeneration(0));
      void putRaft(env, RaftKey.applied, encodeIndex(0));
      void putRaft(env, RaftKey.hardState, encodeHardState({ term: 0, vote: 0, commit: 0 }));
    });
    writeId(files, id);
    return;
  }
  if (format.version !== FORMAT_VERSION) {
    throw new StorageError(`${files.dataFile}: store format ${format.version}, this build reads ${FORMAT_VERSION}`);
  }
  const id = Buffer.from(format.id);
  if (!files.id) writeId(files, id); // the process died between creating the store and naming it
  else if (!files.id.equals(id)) {
    throw new StorageCorruptionError(files.dataFile, undefined, `the data file is store ${id.toString('hex')}, but ${files.idFile} names ${files.id.toString('hex')}`);
  }
}

export class ReplicaStore {
  readonly limits: Limits;
  /** The SnapshotSource for the Raft core. */
  readonly snapshots: SnapshotReader;
  private book: Book | undefined;
  private readGeneration: 0 | 1 = 0;
  private appliedVisible = 0;
  private failure: unknown;

  constructor(
    private readonly env: Env,
    options: ReplicaStoreOptions,
    /** Set when the data file was shorter than LMDB expects: every record must be verified. */
    private readonly shortfall: string | undefined,
  ) {
    this.limits = resolveLimits(options.limits);
    this.snapshots = new SnapshotReader(env, (g) => this.tables(g));
  }

  get dataFile(): string {
    return this.env.dataFile;
  }

  /**
   * Reads and verifies the Raft state. A fresh store needs the initial configuration (it becomes
   * the log base {0, 0, conf}); it is ignored afterwards.
   */
  load(initialConf?: ConfState): PersistedState {
    this.assertOk();
    try {
      if (!readRaft(this.env, RaftKey.base, () => true)) {
        if (!initialConf) throw new StorageError(`${this.dataFile}: a fresh store needs the initial configuration`);
        const base: SnapshotMeta = { index: 0, term: 0, conf: initialConf };
        this.env.root.transactionSync(() => void putRaft(this.env, RaftKey.base, encodeSnapshotMeta(base)));
      }
      const { state, book } = recover(this.env);
      if (this.shortfall) {
        for (const g of [0, 1] as const) this.verifyGeneration(g);
      }
      this.book = book;
      this.readGeneration = book.generation;
      this.appliedVisible = book.applied;
      return state;
    } catch (e) {
      if (this.shortfall && e instanceof StorageCorruptionError) {
        throw new StorageCorruptionError(e.file, e.index, `${detailOf(e)}; ${this.shortfall}`);
      }
      if (this.shortfall && !(e instanceof StorageError)) {
        throw new StorageCorruptionError(this.dataFile, undefined, `LMDB cannot read the store (${(e as Error).message}); ${this.shortfall}`);
      }
      throw e;
    }
  }

  /**
   * Stages snapshot chunks, installs a snapshot, compacts, appends entries and stores the hard
   * state, in one transaction; resolves once it is fsynced. The caller may send the Ready's
   * messages only then. Writes queued in the same event turn (apply) join the same commit.
   */
  async persist(ready: Ready): Promise<void> {
    const book = this.requireBook();
    const plan = planReady(ready, book, (i) => this.termAt(i));
    let written: Promise<unknown> | undefined;
    try {
      written = writePlan(this.env, plan);
    } catch (e) {
      throw this.fail(e);
    }
    this.book = plan.next;
    if (!written) return;
    try {
      await written;
      await this.env.root.flushed;
    } catch (e) {
      throw this.fail(e);
    }
    if (plan.install) {
      this.readGeneration = plan.stageGeneration;
      this.appliedVisible = Math.max(this.appliedVisible, plan.install.index);
    }
  }

  /**
   * Applies the commands of committed entries up to `index`, and records `index` as applied, in
   * one transaction. Resolves with one result per command once committed (and so visible to reads).
   */
  apply(index: number, commands: readonly Command[]): Promise<CommandResult[]> {
    const book = this.requireBook();
    if (index <= book.applied) throw new StorageError(`apply of index ${index}: already applied up to ${book.applied}`);
    if (index > book.lastIndex) throw new StorageError(`apply of index ${index}: the log ends at ${book.lastIndex}`);
    book.applied = index;
    const tables = this.tables(book.generation);
    // A child transaction: if anything throws, none of this batch's writes survive.
    const done = this.env.root.childTransaction(() => {
      const results = applyCommands(tables, commands);
      void putRaft(this.env, RaftKey.applied, encodeIndex(index));
      return results;
    });
    return done.then(
      (results) => {
        this.appliedVisible = Math.max(this.appliedVisible, index);
        return results;
      },
      (e: unknown) => {
        throw this.fail(e);
      },
    );
  }

  /** The applied index that reads currently see. */
  get applied(): number {
    return this.appliedVisible;
  }

  get(key: Uint8Array): Uint8Array | null {
    this.assertOk();
    return this.tables(this.readGeneration).getKv(key);
  }

  /**
   * Up to `limit` pairs with start <= key < end (end null: no bound) in bytewise key order, and
   * `more`: the key to continue from, or null when the range is exhausted.
   */
  scan(start: Uint8Array, end: Uint8Array | null, limit: number): { items: KeyValue[]; more: Uint8Array | null } {
    this.assertOk();
    const items: KeyValue[] = [];
    const range = { start, limit: limit + 1, ...(end ? { end } : {}) };
    for (const { key, body } of this.tables(this.readGeneration).range('kv', range)) {
      if (items.length === limit) return { items, more: key };
      items.push({ key, value: body });
    }
    return { items, more: null };
  }

  /** Number of keys in the state machine. */
  count(): number {
    this.assertOk();
    const stats = this.env.generations[this.readGeneration].kv.getStats() as { entryCount: number };
    return stats.entryCount;
  }

  getMeta(name: string): Uint8Array | undefined {
    this.assertOk();
    return this.tables(this.readGeneration).getMeta(name);
  }

  getSession(clientId: Uint8Array): SessionInfo | undefined {
    this.assertOk();
    const s = this.tables(this.readGeneration).getSession(clientId);
    return s && { seq: s.seq, time: s.time };
  }

  /** Every client session as stored (for a partition hand-off: sessions travel with the data). */
  sessionImages(): { clientId: Uint8Array; record: Uint8Array }[] {
    this.assertOk();
    const out: { clientId: Uint8Array; record: Uint8Array }[] = [];
    for (const { key, body } of this.tables(this.readGeneration).range('sessions', {})) out.push({ clientId: key, record: Buffer.from(body) });
    return out;
  }

  /** Reads every state-machine record of the live generation, throwing on the first damaged one. */
  verifyStateMachine(): void {
    this.assertOk();
    this.verifyGeneration(this.readGeneration);
  }

  /** LMDB's own counters (with trackMetrics): time in commits, page writes and syncs. */
  metrics(): Record<string, number> {
    return this.env.root.getStats() as Record<string, number>;
  }

  async close(): Promise<void> {
    this.snapshots.releaseAll();
    await this.env.root.close();
  }

  private verifyGeneration(g: 0 | 1): void {
    const t = this.tables(g);
    for (const table of TABLES) for (const _ of t.range(table, {}));
  }

  private termAt(index: number): number | undefined {
    const key = indexKey(index);
    const stored = this.env.log.get(key);
    const e = stored && decodeEntry(key, stored);
    if (stored && !e) throw new StorageCorruptionError(this.dataFile, index, 'the entry fails its checksum');
    return e ? e.term : undefined;
  }

  private tables(g: 0 | 1): Tables {
    return new Tables(this.env.generations[g], this.dataFile);
  }

  private requireBook(): Book {
    this.assertOk();
    if (!this.book) throw new StorageError('load() must be called first');
    return this.book;
  }

  private assertOk(): void {
    if (this.failure !== undefined) throw new StoreFailedError(this.failure);
  }

  /** After a failed write the in-memory view may be ahead of the disk: stop, report, reopen. */
  private fail(e: unknown): unknown {
    this.failure ??= e;
    return e;
  }
}

