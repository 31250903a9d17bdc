// One replica of one group, hosted by a simulated process (machine.ts), running the shipped
// replica shell (src/replica/replica.ts) with its state machine and storage seam
// (machine-storage.ts), over the real ReplicaStore in the machine's shared MemoryDisk environment.
// The clock, timers, randomness, network and disk timing come from the world's seeded event queue.
// When the machine crashes, this replica dies with it: its unsynced batches are lost, its timers
// and promises go silent, and a restart opens its store again from what was synced. The host only
// watches: it reports each Ready taken, each send and each apply to the checker, without changing
// them.
import { Replica, type ReplicaStorage } from '../../src/replica/replica.ts';
import type { ReplicaEnv } from '../../src/replica/env.ts';
import { machineStorage } from '../../src/replica/machine-storage.ts';
import { StateMachine } from '../../src/replica/state-machine.ts';
import type { RaftNode } from '../../src/raft/node.ts';
import type { ConfState, Entry, HardState, Message, NodeId, RaftConfig, Ready } from '../../src/raft/types.ts';
import { openMemoryStore, type ReplicaStore } from '../../src/storage/index.ts';
import type { OpenedWal } from '../../src/storage/wal.ts';
import type { Later } from '../../src/storage/replica-store.ts';
import type { Env } from '../../src/storage/env.ts';
import { DurableView, type DurableLog } from './disk.ts';
import { Violation, type Checker, type Watched } from './invariants.ts';
import type { Machine } from './machine.ts';
import type { Rng } from './prng.ts';
import type { Profile } from './profile.ts';

/** What a host needs from its group (group.ts) and the world around it. */
export interface HostWorld {
  readonly now: number;
  readonly checker: Checker;
  readonly profile: Profile;
  send(from: Host, m: Message): void;
  /** Ready handed to storage (for the trace). */
  readyTaken(h: Host, rd: Ready): void;
  applied(h: Host, e: Entry): void;
  installed(h: Host, index: number): void;
  /** A violation found inside the shell's promises, to be thrown by the event loop. */
  report(v: Violation): void;
  /** The violation a shell's own failure stands for. */
  fatal(h: Host, e: unknown): Violation;
  /** Adds to a statistic of the run. */
  count(what: string, n?: number): void;
}

/** One life of the replica process. */
export interface Process {
  readonly replica: Replica;
  readonly store: ReplicaStore;
  /** Highest index this process answered a client write for (stale reads must see it). */
  answered: number;
  /** Last index handed to the state machine (or installed). */
  applied: number;
}

/** Log compaction in the simulator: small, so snapshots and compaction happen in short runs. */
const COMPACT_EVERY = 40;
const LOG_TAIL = 10;

export class Host implements Watched {
  /** The checker's view of this replica's store: the synced state, as a restart would recover it. */
  readonly disk: DurableView;
  proc: Process | undefined;
  private lastHard: HardState | undefined;
  /** The durable term of the disk its machine lost at its last replacement (machine.ts). */
  lostTerm = 0;
  /**
   * What its last replaced disk held durably: acknowledgements it sent from there were honest. A
   * leader may count one until it hears from the new disk; kept until this replica caught up.
   */
  get lostDisk(): DurableLog | undefined {
    if (this.lost !== undefined && this.node !== null && !this.node.blank) this.lost = undefined;
    return this.lost;
  }
  set lostDisk(d: DurableLog | undefined) {
    this.lost = d;
  }
  private lost: DurableLog | undefined;
  /** The group's highest committed index when its disk was last replaced: it has caught up once its log reaches it. */
  mustHold = 0;

  constructor(
    readonly id: NodeId,
    /** The machine hosting it, and the name of its store in the machine's environment. */
    readonly machine: Machine,
    readonly store: string,
    private readonly initialConf: ConfState,
    private readonly world: HostWorld,
    /** This replica's randomness (election timeouts). */
    readonly rng: Rng,
    private readonly raft: Omit<RaftConfig, 'id' | 'random' | 'snapshots'>,
  ) {
    this.disk = new DurableView(machine.memory, machine.wal, store);
  }

  get up(): boolean {
    return this.proc !== undefined;
  }

  /** Its disk was replaced: the next durable state starts a new history, not a continuation. */
  forget(): void {
    this.lastHard = undefined;
  }

  /** Started with the group's configuration (not a spare that joins later). */
  get founder(): boolean {
    return this.initialConf.voters.length > 0;
  }

  get node(): RaftNode | null {
    return this.proc?.replica.node ?? null;
  }

  /** Starts in a new life of the machine, on its environment and clock. */
  start(env: ReplicaEnv, storeEnv: Env, log: (after: number) => OpenedWal, later: Later): void {
    const w = this.world;
    const store = openMemoryStore(storeEnv, undefined, log, later);
    const persisted = store.load(this.initialConf);
    this.lastHard = this.disk.hard;
    const storage = this.watched(machineStorage(store, new StateMachine(0, undefined, undefined)));
    const replica = new Replica({
      // As the server: blank while the store keeps its mark (created empty).
      raft: { ...this.raft, id: this.id, blankStart: store.blank },
      snapshots: store.snapshots,
      persisted,
      storage,
      env,
      send: (msgs) => {
        for (const m of msgs) {
          w.checker.sending(this, m);
          w.send(this, m);
        }
      },
      tickMs: 1,
      compactEvery: COMPACT_EVERY,
      logTail: LOG_TAIL,
      // The checker's findings inside the Ready loop arrive here too, as the loop's failure.
      onFatal: (e) => w.report(w.fatal(this, e)),
    });
    this.proc = { replica, store, answered: 0, applied: persisted.applied };
    w.checker.started(this);
    replica.start();
  }

  /** The machine died: nothing of this life answers any more. */
  stop(): void {
    this.countReadsJoined();
    this.proc = undefined;
  }

  /** Adds this life's follower reads that shared a queued ReadIndex to the world's statistics. */
  countReadsJoined(): void {
    if (this.proc) this.world.count('reads joined', this.proc.replica.stats.readsJoined);
  }

  /** The shell's own storage seam, with the checker looking at what passes through it. */
  private watched(inner: ReplicaStorage): ReplicaStorage {
    return {
      persist: (rd) => {
        const p = this.proc as Process;
        this.world.checker.readyTaken(this, rd);
        this.world.readyTaken(this, rd);
        if (rd.snapshot) {
          if (rd.snapshot.index < p.applied) {
            throw new Violation('applied-monotonic', `n${this.id} installs snapshot ${rd.snapshot.index} below its applied index ${p.applied}`);
          }
          p.applied = rd.snapshot.index;
          this.world.installed(this, rd.snapshot.index);
        }
        return inner.persist(rd);
      },
      apply: (entries, onAnswers) => {
        const p = this.proc as Process;
        for (const e of entries) {
          this.world.checker.applying(this, e, p.applied);
          p.applied = e.index;
          this.world.applied(this, e);
        }
        return inner.apply(entries, onAnswers);
      },
      commitSoon: () => inner.commitSoon(),
      clearBlank: () => inner.clearBlank(),
    };
  }

  /** A batch became durable: a changed hard state must keep the voting rules. */
  synced(): void {
    if (this.lastHard === undefined) return;
    const after = this.disk.hard;
    const before = this.lastHard;
    if (after.term !== before.term || after.vote !== before.vote || after.commit !== before.commit) {
      this.lastHard = after;
      try {
        this.world.checker.persisted(this, before, after);
      } catch (e) {
        if (e instanceof Violation) this.world.report(e);
        else throw e;
      }
    }
  }
}
