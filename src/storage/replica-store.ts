// One replica's durable state in one LMDB environment: the Raft log and hard state (persist),
// the state machine (apply, reads) and snapshots (SnapshotSource, staging and install).
import { dirname } from 'node:path';
import type { ConfState, HardState, PersistedState, Ready, SnapshotMeta } from '../raft/types.ts';
import type { Plan } from './ready-plan.ts';
import { applyCommands } from './apply.ts';
import type { Book } from './book.ts';
import type { Env } from './env.ts';
import { StorageCorruptionError, StorageError, StoreFailedError, TooLargeError, withCommitCause } from './errors.ts';
import { MAX_STORABLE_KEY_BYTES, type Limits } from './limits.ts';
import { runAt } from './log-table.ts';
import { putRaft, readRaft } from './raft-table.ts';
import { planReady } from './ready-plan.ts';
import { writePlan } from './ready-write.ts';
import { RaftKey, decodeIndex, encodeIndex, encodeSnapshotMeta } from './records.ts';
import { recover } from './recover.ts';
import { storageMutations } from './mutations.ts';
import { decodeReadyRecord, encodeReadyRecord, runsOf, type ReadyRecord } from './ready-record.ts';
import type { OpenedWal, Wal } from './wal.ts';
import type { WalRecord } from './wal-codec.ts';
import { SnapshotReader } from './snapshot-source.ts';
import { StagedTables } from './staged-tables.ts';
import { Tables } from './tables.ts';
import { TABLES } from './snapshot-image.ts';
import type { Command, CommandResult, KeyValue, SessionInfo } from './types.ts';

/**
 * How long LMDB writes the log already holds may wait to be committed together (ms). Readers
 * never wait for it (commitSoon); a restart replays at most this much of the log. 50 ms rather
 * than 5: in the default 3-process layout, +20-40% writes at 64-192 in flight and -10-25% CPU per
 * write at 1,000/s (docs/write-path.md).
 */
export const CHECKPOINT_MS = 50;

/** Runs a function later; the returned function cancels it. */
export type Later = (fn: () => void) => () => void;

/** `ms` later, on a timer. */
export function afterMs(ms: number): Later {
  return (fn) => {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  };
}

export class ReplicaStore {
  /** The SnapshotSource for the Raft core. */
  readonly snapshots: SnapshotReader;
  private book: Book | undefined;
  private readGeneration: 0 | 1 = 0;
  private appliedVisible = 0;
  private failure: unknown;
  private persisting = false;
  /** The persist in flight writes snapshot records into the state machine's tables. */
  private stagingInFlight = false;
  /** The write-ahead log (wal.ts), when the store has one: it makes a Ready durable. */
  private readonly wal: Wal | undefined;
  /** The log's records, until load() has replayed them into LMDB. */
  private walRecords: WalRecord[] | undefined;
  /** LMDB writes queued and not yet committed; a Ready that reads the log waits for none. */
  private lmdbOutstanding = 0;
  private lmdbIdleWaiters: (() => void)[] = [];
  /** Set while a Ready waits for LMDB before it plans: applies issued meanwhile run after it. */
  private gate: Promise<void> | undefined;
  /** The last apply's staged writes: the next apply reads through them until they are committed. */
  private lastLayer: StagedTables | undefined;
  /** load() created this store (only the blankMarkNotKept mutation reads it). */
  private createdBlank = false;

  /** Use openReplicaStore (open-store.ts). */
  constructor(
    private readonly env: Env,
    readonly limits: Limits,
    /** Set when the data file was shorter than LMDB expects: every record must be verified. */
    private readonly shortfall: string | undefined,
    log?: OpenedWal,
    /** Runs the held-back LMDB writes later (default: CHECKPOINT_MS on a timer; the simulator's clock there). */
    private readonly later: Later = afterMs(CHECKPOINT_MS),
  ) {
    this.snapshots = new SnapshotReader(env, (g) => this.tables(g));
    this.wal = log?.wal;
    this.walRecords = log?.records;
  }

  get dataFile(): string {
    return this.env.dataFile;
  }

  /**
   * The store was created empty with a configuration (a founder, or a voter whose disk was
   * replaced) and has not caught up with its group since: RaftConfig.blankStart. Kept on disk, so
   * a replica that crashes again before it caught up restarts blank. Stores older than the mark
   * have none: they start as they always did.
   */
  get blank(): boolean {
    if (storageMutations.blankMarkNotKept) return this.createdBlank;
    return readRaft(this.env, RaftKey.blank, () => true) === true;
  }

  /**
   * The replica caught up (RaftNode.blank turned false): removes the mark, durably at once. Once
   * per store, so the synchronous commit costs nothing that matters; a crash before it only
   * leaves the replica blank for one more start.
   */
  clearBlank(): void {
    this.assertOk();
    if (readRaft(this.env, RaftKey.blank, () => true) === undefined) return;
    try {
      this.env.root.transactionSync(() => void this.env.raft.remove(RaftKey.blank));
    } catch (e) {
      throw this.fail(e);
    }
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
        // An empty store is marked blank with its base, in one durable write: a crash before it
        // catches up must not restart it as a voter that remembers (see `blank`). Every empty
        // store, a joiner's too: a voter whose disk was replaced may come back with --join (a
        // member added by `kvs replica add`, a Kubernetes founder that found its group running),
        // and learns it is a voter from the first configuration entry it receives (found in review).
        const blank = !storageMutations.blankMarkNotKept;
        this.env.root.transactionSync(() => {
          void putRaft(this.env, RaftKey.base, encodeSnapshotMeta(base));
          if (blank) void putRaft(this.env, RaftKey.blank, new Uint8Array(0));
        });
        this.createdBlank = true;
      }
      if (this.walRecords) {
        this.replay(this.walRecords);
        this.walRecords = undefined;
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
        throw new StorageCorruptionError(e.file, e.index, `${e.detail}; ${this.shortfall}`);
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
    if (this.persisting) throw new StorageError('persist() called while the previous Ready is still being persisted');
    if (writesNothing(ready)) return;
    if (this.wal && onlyCommits(ready, book.hardState) && !this.stagingInFlight) return this.keepCommit(ready);
    if (this.wal && onlyAppends(ready, book.lastIndex) && !this.stagingInFlight) return this.persistToLog(ready);
    if (this.lmdbOutstanding === 0) return this.persistToLmdb(this.writeToLmdb(ready));
    // Truncation and compaction read the log, and snapshots replace the state machine: LMDB must
    // hold every earlier write first. Applies issued meanwhile wait behind this Ready.
    this.persisting = true;
    const written = this.lmdbIdle().then(() => this.writeToLmdb(ready));
    const gate = written.then(
      () => undefined,
      () => undefined,
    );
    this.gate = gate;
    void gate.then(() => {
      if (this.gate === gate) this.gate = undefined;
    });
    let step: { plan: Plan; written: Promise<unknown> | undefined };
    try {
      step = await written;
    } finally {
      this.persisting = false;
    }
    return this.persistToLmdb(step);
  }

  /**
   * Entries and hard state only: durable once the log has the record. LMDB gets the same writes
   * only then, so it never holds a Ready the log could lose (a restart replays the log from
   * LMDB's walSeq), and commits them behind, without anyone waiting.
   */
  private async persistToLog(ready: Ready): Promise<void> {
    const plan = planReady(ready, this.book!, (i) => this.termAt(i));
    const runs = runsOf(plan.entries);
    let appended: { seq: number; durable: Promise<void> };
    try {
      appended = this.wal!.append(encodeReadyRecord(runs, plan.hardState));
    } catch (e) {
      throw this.fail(e);
    }
    this.book = plan.next;
    this.persisting = true;
    try {
      if (!storageMutations.walDurableBeforeSync) await appended.durable;
    } catch (e) {
      throw this.fail(e);
    } finally {
      this.persisting = false;
    }
    this.assertOk();
    const seq = appended.seq;
    if (storageMutations.walReleasedEarly) this.wal!.release(seq);
    // The log may drop what LMDB holds once it is on disk: at commit (env.ts), or with lmdb-js's
    // overlappingSync (bench/storage.ts measures it) only once flushed.
    const committed = this.defer(() => Promise.all([writePlan(this.env, plan, runs), putRaft(this.env, RaftKey.walSeq, encodeIndex(seq))]));
    void committed
      .then(
        () => this.env.root.flushed,
        () => undefined, // defer() fails the store
      )
      .then(
        () => {
          if (this.failure === undefined) this.wal!.release(seq);
        },
        // `flushed` follows LMDB's newest batch: a later checkpoint's failure (which fails the
        // store) rejects it too. Unhandled, that rejection would end the process.
        (e: unknown) => void this.fail(e),
      );
  }

  /**
   * A Ready whose only write is a higher commit index waits for no sync: the commit index is a
   * lower bound a restart learns again from the leader (Raft keeps it in volatile state; etcd's
   * raft syncs only entries, term and vote), so it joins LMDB's next checkpoint. Every Ready
   * before it is durable already (the replica persists one at a time), and the checkpoint commits
   * held-back writes in order, so LMDB never holds a commit index beyond the entries it holds.
   * Without this, a leader synced twice per round (its entries, then the commit they reached)
   * and the next round's entries waited for the second sync.
   */
  private keepCommit(ready: Ready): void {
    const plan = planReady(ready, this.book!, (i) => this.termAt(i));
    this.book = plan.next;
    void this.defer(() => Promise.resolve(writePlan(this.env, plan)));
  }

  /** Plans the Ready against the committed log and queues it into LMDB's batch of this turn. */
  private writeToLmdb(ready: Ready): { plan: Plan; written: Promise<unknown> | undefined } {
    this.assertOk();
    const plan = planReady(ready, this.book!, (i) => this.termAt(i));
    let written: Promise<unknown> | undefined;
    try {
      written = writePlan(this.env, plan);
    } catch (e) {
      throw this.fail(e);
    }
    this.book = plan.next;
    if (plan.install) this.lastLayer = undefined; // staged writes of the old image are not this one's
    return { plan, written };
  }

  private async persistToLmdb({ plan, written }: { plan: Plan; written: Promise<unknown> | undefined }): Promise<void> {
    if (!written) return;
    this.persisting = true;
    this.stagingInFlight = plan.stageSteps.length > 0 || plan.install !== undefined;
    const done = written.then(() => this.env.root.flushed);
    this.trackLmdb(done);
    try {
      await done;
    } catch (e) {
      throw this.fail(await withCommitCause(e, dirname(this.dataFile)));
    } finally {
      this.persisting = false;
      this.stagingInFlight = false;
    }
    if (plan.install) {
      this.readGeneration = plan.stageGeneration;
      this.appliedVisible = Math.max(this.appliedVisible, plan.install.index);
    }
  }

  /** Counts an LMDB write until it commits; a failed commit fails the store. */
  private trackLmdb(p: Promise<unknown>): void {
    this.lmdbOutstanding++;
    p.then(
      () => undefined,
      async (e: unknown) => {
        this.fail(await withCommitCause(e, dirname(this.dataFile)));
      },
    ).finally(() => {
      if (--this.lmdbOutstanding === 0) for (const wake of this.lmdbIdleWaiters.splice(0)) wake();
    });
  }

  /**
   * LMDB writes held back: the log has them durably, so LMDB, which only spares a restart the
   * replay, commits them in batches — every CHECKPOINT_MS, or at once when a read waits for them.
   */
  private deferred: { write: () => Promise<unknown>; handedOver: (written: Promise<unknown>) => void }[] = [];
  /** Cancels the scheduled checkpoint, if one is. */
  private cancelCheckpoint: (() => void) | undefined;

  /**
   * Holds `write` back for the next checkpoint; the promise settles when LMDB has committed it.
   * It counts as outstanding from now (a Ready that reads the log waits for it too), and a failed
   * commit fails the store.
   */
  private defer(write: () => Promise<unknown>): Promise<unknown> {
    let handedOver!: (written: Promise<unknown>) => void;
    const committed = new Promise<unknown>((resolve) => (handedOver = resolve)); // follows `written`
    this.deferred.push({ write, handedOver });
    this.trackLmdb(committed);
    if (!this.wal) this.flushDeferred(); // without a log, LMDB is what makes it durable
    else {
      this.cancelCheckpoint ??= this.later(() => {
        this.cancelCheckpoint = undefined;
        this.flushDeferred();
      });
    }
    return committed;
  }

  /** Resolves once LMDB has committed every write handed to it or held back. */
  settled(): Promise<void> {
    return this.lmdbIdle();
  }

  /**
   * A reader waits for what is held back: commit it now, or, while a commit is running, as soon
   * as it ends. Readers arriving during a commit then share the next one (group commit), where a
   * commit per waiting reader cost 40-80% more CPU per request in a read/update mix.
   */
  commitSoon(): void {
    if (this.deferred.length === 0) return;
    if (this.flushing) this.flushWanted = true;
    else this.flushDeferred();
  }

  /** The held-back writes last handed to LMDB, until committed. */
  private flushing: Promise<unknown> | undefined;
  /** A reader asked for a commit while one was running. */
  private flushWanted = false;

  private flushDeferred(): void {
    this.cancelCheckpoint?.();
    this.cancelCheckpoint = undefined;
    // One checkpoint at a time: one handed over while the previous is uncommitted would commit
    // over it should it fail (a later applied index over an apply LMDB never got, answered
    // already). It leaves when the running one has committed, or not at all after a failure.
    if (this.flushing) {
      this.flushWanted = true;
      return;
    }
    const written: Promise<unknown>[] = [];
    // After a write that throws, the rest are not handed to LMDB: a later apply's applied index
    // must not commit over an apply that is only partly in LMDB's batch (the store fails anyway).
    let thrown: { error: unknown } | undefined;
    if (this.failure !== undefined) thrown = { error: new StoreFailedError(this.failure) };
    for (const it of this.deferred.splice(0)) {
      let p: Promise<unknown>;
      if (thrown) p = Promise.reject(thrown.error);
      else {
        try {
          p = it.write();
        } catch (e) {
          thrown = { error: e };
          p = Promise.reject(e);
        }
      }
      it.handedOver(p);
      written.push(p);
    }
    const flushing = Promise.allSettled(written);
    this.flushing = flushing;
    void flushing.then(async (results) => {
      // The store fails before anything else is handed over (the next flush waits for this).
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) this.fail(await withCommitCause(failed.reason, dirname(this.dataFile)));
      if (this.flushing !== flushing) return;
      this.flushing = undefined;
      if (this.flushWanted) {
        this.flushWanted = false;
        this.commitSoon();
      }
    });
  }

  private lmdbIdle(): Promise<void> {
    if (this.deferred.length) this.flushDeferred();
    if (this.lmdbOutstanding === 0) return Promise.resolve();
    return new Promise((resolve) => this.lmdbIdleWaiters.push(resolve));
  }

  /**
   * Writes into LMDB every Ready of the log that LMDB does not hold yet (the records after its
   * walSeq), in one durable transaction, before the state is read.
   */
  private replay(records: readonly WalRecord[]): void {
    const held = readRaft(this.env, RaftKey.walSeq, decodeIndex) ?? 0;
    const todo = records.filter((r) => r.seq > held);
    const first = todo[0];
    if (first && first.seq !== held + 1) {
      throw new StorageCorruptionError(this.dataFile, undefined, `the write-ahead log continues at record ${first.seq}, but the store holds records only through ${held}`);
    }
    if (first) {
      this.env.root.transactionSync(() => {
        let { book } = recover(this.env);
        for (const r of todo) {
          let record: ReadyRecord;
          let plan: Plan;
          try {
            record = decodeReadyRecord(r.payload);
            plan = planReady(replayed(record), book, (i) => this.termAt(i));
          } catch (e) {
            throw new StorageCorruptionError(this.dataFile, undefined, `write-ahead log record ${r.seq} does not follow the store: ${(e as Error).message}`);
          }
          void writePlan(this.env, plan);
          void putRaft(this.env, RaftKey.walSeq, encodeIndex(r.seq));
          book = plan.next;
        }
      });
    }
    this.wal!.release(todo.at(-1)?.seq ?? held);
  }

  /**
   * Applies the commands of committed entries up to `index`, and records `index` as applied, in
   * one transaction. Resolves with one result per command once committed (and so visible to reads).
   * `onResults` gets the same results as soon as they are computed, before the commit: the entries
   * are committed in the Raft log already, so answers may leave then (a crash re-applies them from
   * the log, deterministically, to the same results).
   */
  apply(index: number, commands: readonly Command[], onResults?: (results: CommandResult[]) => void): Promise<CommandResult[]> {
    if (this.gate) return this.gate.then(() => this.apply(index, commands, onResults));
    const book = this.requireBook();
    if (index <= book.applied) throw new StorageError(`apply of index ${index}: already applied up to ${book.applied}`);
    if (index > book.lastIndex) throw new StorageError(`apply of index ${index}: the log ends at ${book.lastIndex}`);
    book.applied = index;
    const tables = this.tables(book.generation);
    // The batch reads committed state. A persist of this turn that stages snapshot records writes
    // the tables in the same transaction, so then the batch runs inside it (a child transaction).
    const done = this.stagingInFlight ? this.applyInTransaction(tables, index, commands, onResults) : this.applyStaged(tables, index, commands, onResults);
    return done.then(
      (results) => {
        this.appliedVisible = Math.max(this.appliedVisible, index);
        return results;
      },
      async (e: unknown) => {
        throw this.fail(await withCommitCause(e, dirname(this.dataFile)));
      },
    );
  }

  private applyStaged(tables: Tables, index: number, commands: readonly Command[], onResults?: (results: CommandResult[]) => void): Promise<CommandResult[]> {
    // The previous apply may still be committing (nobody waits for it): read through its writes.
    const below = this.lastLayer && !this.lastLayer.committed && !storageMutations.applyIgnoresHeldBack ? this.lastLayer : undefined;
    const staged = new StagedTables(tables, below);
    this.lastLayer = staged;
    let results: CommandResult[];
    try {
      results = applyCommands(staged, commands);
    } catch (e) {
      return Promise.reject(e); // nothing was handed to LMDB: none of this batch's writes happen
    }
    if (onResults) queueMicrotask(() => onResults(results));
    const written = this.defer(() => {
      const pending = new Set<Promise<unknown>>();
      staged.writeTo((p) => pending.add(p));
      pending.add(putRaft(this.env, RaftKey.applied, encodeIndex(index)));
      return Promise.all(pending);
    });
    return written.then(() => {
      staged.markCommitted();
      return results;
    });
  }

  private applyInTransaction(tables: Tables, index: number, commands: readonly Command[], onResults?: (results: CommandResult[]) => void): Promise<CommandResult[]> {
    // A child transaction: if anything throws, none of this batch's writes survive.
    return this.env.root.childTransaction(() => {
      const results = applyCommands(tables, commands);
      void putRaft(this.env, RaftKey.applied, encodeIndex(index));
      // Not inside the transaction's callback: a throwing listener must not abort the apply.
      if (onResults) queueMicrotask(() => onResults(results));
      return results;
    });
  }


  /** The applied index that reads currently see. */
  get applied(): number {
    return this.appliedVisible;
  }

  get(key: Uint8Array): Uint8Array | null {
    return this.readTables().getKv(key);
  }

  /**
   * Up to `limit` pairs with start <= key < end (end null: no bound) in bytewise key order, and
   * `more`: the key to continue from, or null when the range is exhausted.
   */
  /**
   * Up to `limit` pairs from `start` in key order, and at most `maxBytes` of keys and values (but
   * always one pair, if any): a page of large values must still fit one frame. `more` is the first
   * key left out.
   */
  scan(start: Uint8Array, end: Uint8Array | null, limit: number, maxBytes = Infinity): { items: KeyValue[]; more: Uint8Array | null } {
    const tables = this.readTables();
    // LMDB fails on a bound longer than a key can be, with an internal error ("offset is out of
    // bounds", "Key of size 4027 was too large"): refuse it as what it is, a request too large.
    if (start.length > MAX_STORABLE_KEY_BYTES) throw new TooLargeError('scan start', start.length, MAX_STORABLE_KEY_BYTES);
    if (end !== null && end.length > MAX_STORABLE_KEY_BYTES) throw new TooLargeError('scan end', end.length, MAX_STORABLE_KEY_BYTES);
    // An empty range, [start, end) with end <= start: the empty end is the smallest key, not "no end".
    if (end !== null && Buffer.compare(start, end) >= 0) return { items: [], more: null };
    const items: KeyValue[] = [];
    let bytes = 0;
    const range = { start, limit: limit + 1, ...(end ? { end } : {}) };
    for (const { key, body } of tables.range('kv', range)) {
      bytes += key.length + body.length;
      if (items.length === limit || (items.length > 0 && bytes > maxBytes)) return { items, more: key };
      items.push({ key, value: body });
    }
    return { items, more: null };
  }

  /** Up to `limit` keys from `start` in key order, without their values (a partition hand-off's scan). */
  scanKeys(start: Uint8Array, limit: number): { keys: Buffer[]; more: Uint8Array | null } {
    const keys: Buffer[] = [];
    for (const key of this.readTables().keys('kv', { start, limit: limit + 1 })) {
      if (keys.length === limit) return { keys, more: key };
      keys.push(key);
    }
    return { keys, more: null };
  }

  /** Number of keys in the state machine. */
  count(): number {
    this.requireBook(); // as readTables: the generation is known only after load()
    const stats = this.env.generations[this.readGeneration].kv.getStats() as { entryCount: number };
    return stats.entryCount;
  }

  getMeta(name: string): Uint8Array | undefined {
    return this.readTables().getMeta(name);
  }

  getSession(clientId: Uint8Array): SessionInfo | undefined {
    const s = this.readTables().getSession(clientId);
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
    if (this.failure === undefined) await this.lmdbIdle();
    this.cancelCheckpoint?.();
    await this.wal?.close();
    await this.env.close();
  }

  private verifyGeneration(g: 0 | 1): void {
    const t = this.tables(g);
    for (const table of TABLES) for (const _ of t.range(table, {}));
  }

  private termAt(index: number): number | undefined {
    return runAt(this.env, index)?.entries.find((e) => e.index === index)?.term;
  }

  private tables(g: 0 | 1): Tables {
    return new Tables(this.env.generations[g], this.dataFile);
  }

  /** The tables reads see; before load() which generation that is is not known yet (nor the log replayed). */
  private readTables(): Tables {
    this.requireBook();
    return this.tables(this.readGeneration);
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


/**
 * A Ready that only appends entries after the last one and stores a hard state: the log alone can
 * hold it (replacing stored entries reads the log table, so that waits for LMDB).
 */
function onlyAppends(rd: Ready, lastIndex: number): boolean {
  const first = rd.entries[0];
  if (first ? first.index <= lastIndex : rd.hardState === undefined) return false;
  return rd.snapshotChunks.length === 0 && rd.snapshot === undefined && rd.compaction === undefined;
}

/** A Ready that only moves the commit index: same term and vote, nothing else to write. */
function onlyCommits(rd: Ready, durable: HardState): boolean {
  const hs = rd.hardState;
  if (hs === undefined) return false;
  if ((hs.term !== durable.term || hs.vote !== durable.vote) && !storageMutations.hardStateUnsynced) return false;
  return rd.entries.length === 0 && rd.snapshotChunks.length === 0 && rd.snapshot === undefined && rd.compaction === undefined;
}

function writesNothing(rd: Ready): boolean {
  return rd.entries.length === 0 && rd.hardState === undefined && rd.snapshotChunks.length === 0 && rd.snapshot === undefined && rd.compaction === undefined;
}

/** A logged Ready's writes, as the Ready they came from. */
function replayed(r: ReadyRecord): Ready {
  return { softState: undefined, hardState: r.hardState, snapshotChunks: [], snapshot: undefined, compaction: undefined, entries: r.entries, messages: [], committedEntries: [], readStates: [], failedReads: [] };
}
