// One simulated process (a `kvs server` or a host process of `kvs up`): it hosts one replica of
// each simulated group (host.ts), all on one clock, one timer queue and one shared storage
// environment, whose batch takes every hosted replica's writes of a turn and syncs them at once
// (src/storage/shared-env.ts does the same with LMDB). It crashes and restarts as a whole: a crash
// loses the unsynced writes of every group it hosts and silences all of them at once.
import { idCounter } from '../../src/replica/env.ts';
import { MemoryDisk, MemoryWalDisk, type DiskTiming } from '../../src/storage/index.ts';
import { FrozenLog } from './disk.ts';
import type { Host } from './host.ts';
import type { Rng } from './prng.ts';
import type { Profile } from './profile.ts';

/** What a machine needs from the world around it. */
export interface MachineWorld {
  readonly now: number;
  readonly profile: Profile;
  schedule(at: number, run: () => void): void;
  /** The machine crashed on its own (an armed crash between a write and its sync). */
  crashed(m: Machine, where: string): void;
}

export class Machine {
  /** What survives this machine's crashes: one environment, a store per hosted group. */
  readonly memory = new MemoryDisk();
  /** The write-ahead logs of its replicas, with the same crash rule. */
  readonly wal = new MemoryWalDisk();
  /** Its replicas, one per group (the world adds them before the first start). */
  readonly hosts: Host[] = [];
  /** Set by the nemesis: the next batch started crashes the process before it syncs. */
  armed = false;
  /** Counts disk replacements: messages sent to or from an earlier disk's process are gone with it. */
  disks = 0;
  /** Its disk was replaced and it has not started on the new one yet. */
  replaced = false;
  private life = 0;
  private running = false;

  constructor(
    readonly id: number,
    private readonly world: MachineWorld,
    /** Disk timing (and, with one group, that group's replica's randomness too). */
    readonly rng: Rng,
    /** Real time per local tick: this machine's clock rate error. */
    private readonly period: number,
  ) {
    this.memory.onSync = () => {
      for (const h of this.hosts) h.synced();
    };
    this.wal.onSync = this.memory.onSync;
  }

  get up(): boolean {
    return this.running;
  }

  start(): void {
    this.replaced = false;
    const life = ++this.life;
    this.running = true;
    const alive = (): boolean => this.life === life;
    const w = this.world;
    const at = (delay: number, fn: () => void): void => w.schedule(w.now + delay, () => alive() && fn());
    const timing: DiskTiming = {
      afterTurn: (fn) => at(0, fn),
      sync: (fn) => {
        const delay = this.rng.range(0, w.profile.fsyncMax);
        if (!this.armed) return at(delay, fn);
        this.armed = false;
        at(this.rng.range(0, delay), () => {
          this.crash();
          w.crashed(this, 'between a write and its sync');
        });
      },
    };
    const store = this.memory.openShared(timing);
    for (const h of this.hosts) {
      h.start(
        {
          now: () => w.now / this.period,
          every: (ms, fn) => {
            let on = true;
            const loop = (): void => at(ms * this.period, () => on && (fn(), loop()));
            loop();
            return () => (on = false);
          },
          defer: (fn) => at(0, fn),
          random: () => h.rng.float(),
          incarnation: life,
          nextId: idCounter(),
        },
        store(h.store),
        (after) => this.wal.open(h.store, timing, after),
        // The store's held-back LMDB writes: committed a random while later, on this clock.
        (fn) => {
          let on = true;
          at(this.rng.range(0, w.profile.fsyncMax), () => on && fn());
          return () => (on = false);
        },
      );
    }
  }

  /**
   * The process dies and its disk is replaced by an empty one: every store it hosted is gone. It
   * starts again as the real server would on an empty data directory with the same flags.
   */
  replace(): void {
    if (this.running) this.crash();
    for (const h of this.hosts) {
      h.lostTerm = h.disk.hard.term;
      h.lostDisk = new FrozenLog(h.disk);
      h.forget();
    }
    this.memory.wipe();
    this.wal.wipe();
    this.disks++;
    this.replaced = true;
  }

  /** The process dies: what was not synced is lost, and nothing it started comes back. */
  crash(): void {
    this.life++;
    this.running = false;
    this.memory.crash();
    this.wal.crash();
    for (const h of this.hosts) h.stop();
    this.armed = false;
  }
}
