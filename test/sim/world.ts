// The simulated world: machines (simulated processes, machine.ts) hosting one replica of each
// group (group.ts) of the shipped replica shell (host.ts), the network between the machines,
// clients and the nemesis, driven by one event queue in simulated time. Everything random comes
// from the seed. After every event the shells' promise continuations run (the microtask queue is
// drained), then every node is checked. With one group (the default) a machine is one replica.
import { defaultRaftConfig } from '../../src/raft/node.ts';
import { MsgType, Role, type Message } from '../../src/raft/types.ts';
import { describeMsg } from './describe.ts';
import { Group, type GroupWorld } from './group.ts';
import { Violation } from './invariants.ts';
import { Machine, type MachineWorld } from './machine.ts';
import { Nemesis } from './nemesis.ts';
import { calmLinks, Network } from './network.ts';
import { Rng } from './prng.ts';
import type { Profile } from './profile.ts';
import { EventQueue } from './queue.ts';
import type { Trace } from './trace.ts';

/** Stops a run that has gone wild (a message storm); far above any sane run. */
const MAX_EVENTS = 3_000_000;

/** Lets every promise continuation queued by the last event run (all microtasks drain first). */
const drain = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class World implements MachineWorld, GroupWorld {
  now = 0;
  readonly network: Network;
  readonly machines: Machine[] = [];
  readonly groups: Group[] = [];
  private readonly nemesis: Nemesis;
  private readonly queue = new EventQueue();
  private violation: Violation | undefined;
  private readonly rng: Rng;
  /** Liveness: when faults healed, when every group committed a probe afterwards, when the run ends. */
  healedAt = -1;
  liveAt = -1;
  private endAt = Infinity;
  /** What happened, for the summary (and to see that the faults really bite). */
  readonly stats: Record<string, number> = {};

  constructor(
    seed: number,
    readonly profile: Profile,
    readonly trace: Trace,
  ) {
    const root = new Rng(seed);
    root.fork(); // the profile's stream (drawn by the caller from the same seed)
    this.rng = root.fork();
    this.network = new Network(root.fork());
    this.network.faults = profile.links;
    for (let id = 1; id <= profile.nodes; id++) {
      const period = 1 + this.rng.range(-profile.clockDrift, profile.clockDrift);
      this.machines.push(new Machine(id, this, root.fork(), period));
    }
    const clientRng = root.fork();
    const nemesisRng = root.fork();
    const raft = { ...defaultRaftConfig, ...profile.raft };
    const named = profile.groups > 1;
    // The first group draws from the streams a one-group world always has (its replicas share
    // their machine's), so a seed's one-group run stays what it was; later groups fork new ones.
    this.groups.push(new Group(0, named, this, this.machines, this.machines.map((m) => m.rng), clientRng, raft));
    for (let g = 1; g < profile.groups; g++) {
      const rngs = this.machines.map(() => root.fork());
      this.groups.push(new Group(g, named, this, this.machines, rngs, root.fork(), raft));
    }
    this.nemesis = new Nemesis(this, nemesisRng, profile);
  }

  /** Runs to the end; throws the first Violation. */
  async run(): Promise<void> {
    const p = this.profile;
    for (const m of this.machines) m.start();
    this.clockLoop(this.rng.range(0, 1));
    for (const g of this.groups) g.clients.start();
    this.nemesis.start();
    this.schedule(p.faultTicks, () => this.heal());
    while (this.now < this.endAt) {
      const e = this.queue.pop();
      if (e === undefined) break;
      this.now = e.at;
      try {
        e.run();
        await drain();
        if (this.violation) throw this.violation;
        for (const g of this.groups) g.check();
      } catch (err) {
        if (err instanceof Violation) throw err;
        // The core's own assertions (e.g. "truncating committed entry") are violations too.
        throw new Violation('core-assertion', err instanceof Error ? (err.stack ?? err.message) : String(err));
      }
      if (this.trace.events > MAX_EVENTS) throw new Violation('liveness', `more than ${MAX_EVENTS} events: runaway`);
    }
    for (const g of this.groups) g.clients.stop();
    for (const g of this.groups) for (const h of g.hosts) h.countReadsJoined();
  }

  // ---- For machines and groups ------------------------------------------------------------------

  schedule(at: number, run: () => void): void {
    this.queue.push(at, run);
  }

  report(v: Violation): void {
    this.violation ??= v;
  }

  /** One link per pair of machines carries every group's messages, in order, and a cut cuts them all. */
  send(g: Group, m: Message): void {
    if (m.type === MsgType.Heartbeat && m.quiet) this.count('quiet heartbeats sent');
    // A replaced disk takes its process's connections with it: nothing in flight to or from it arrives.
    const disks = (id: number): number => this.machines[id - 1]?.disks ?? 0;
    const sentBetween = disks(m.from) * 65536 + disks(m.to);
    this.network.send(
      this.now,
      m,
      (at, msg, copy) =>
        this.schedule(at, () => {
          const to = g.host(msg.to);
          if (to?.proc === undefined || this.network.isCut(msg.from, msg.to)) return;
          if (disks(msg.from) * 65536 + disks(msg.to) !== sentBetween) return g.log(() => `drop (disk replaced) ${describeMsg(msg)}`);
          this.trace.mark(this.now, 1, g.tag(msg.from), g.tag(msg.to), msg.type * 8 + copy);
          g.log(() => `deliver ${describeMsg(msg)}${copy > 0 ? ' (duplicate)' : ''}`);
          to.proc.replica.step(msg);
        }),
      (msg, why) => g.log(() => `drop (${why}) ${describeMsg(msg)}`),
    );
  }

  live(g: Group): void {
    if (this.liveAt >= 0 || this.groups.some((x) => x.liveAt < 0)) return;
    this.liveAt = this.now;
    this.endAt = this.now + this.profile.drainTicks;
    if (this.groups.length > 1) this.log(() => `liveness: every group committed a probe (g${g.index + 1} last)`);
  }

  crashed(m: Machine, where: string): void {
    this.trace.mark(this.now, 50, m.id);
    this.count(`crashes (${where})`);
    this.log(() => `n${m.id} CRASH (${where})`);
    for (const g of this.groups) g.clients.crashed(g.host(m.id)!);
    this.restartLater(m);
  }

  // ---- For the nemesis ----------------------------------------------------------------------------

  crash(m: Machine, why: string): void {
    m.crash();
    this.crashed(m, why);
  }

  /** The nemesis replaces m's disk (nemesis.ts checks the operator's rule first): m restarts empty. */
  replace(m: Machine): void {
    const wasUp = m.up;
    for (const g of this.groups) g.host(m.id)!.mustHold = g.checker.committedMax;
    m.replace();
    this.trace.mark(this.now, 52, m.id);
    this.count('disks replaced');
    this.log(() => `n${m.id} DISK REPLACED${wasUp ? ' (process killed)' : ''}: it restarts empty`);
    if (wasUp) for (const g of this.groups) g.clients.crashed(g.host(m.id)!);
    this.restartLater(m);
  }

  restartLater(m: Machine): void {
    if (this.healedAt >= 0) return this.restart(m);
    this.schedule(this.now + this.rng.range(1, this.profile.downMax), () => this.restart(m));
  }

  log(text: () => string): void {
    this.trace.line(this.now, text);
  }

  mark(a: number, b = 0, c = 0, d = 0): void {
    this.trace.mark(this.now, a, b, c, d);
  }

  count(what: string, n = 1): void {
    this.stats[what] = (this.stats[what] ?? 0) + n;
  }

  // ---- Internals --------------------------------------------------------------------------------

  private restart(m: Machine): void {
    if (m.up) return;
    if (m.replaced && !this.settledWithout(m)) {
      // The operator's rule for a replaced disk (docs/raft.md): wait, and look again.
      this.schedule(this.now + 1, () => this.restart(m));
      return;
    }
    m.start();
    this.trace.mark(this.now, 51, m.id);
    this.count('restarts');
    for (const g of this.groups) {
      const d = g.host(m.id)!.disk;
      g.log(() => `n${m.id} restarts: term ${d.hard.term}, log (${d.base.index}, ${d.lastIndex()}], applied ${d.applied}`);
    }
  }

  /**
   * Whether every group m hosts has settled without it, so that m may start on a replaced disk
   * (docs/raft.md, "A voter started from an empty data directory"): one leader among the others
   * that are up, in a term at least the one m's lost disk held, and every other member that is up
   * follows it in that term. No leader of an older term is left to take m's acknowledgements.
   */
  settledWithout(m: Machine): boolean {
    for (const g of this.groups) {
      const me = g.host(m.id)!;
      const up = g.hosts.filter((h) => h !== me && h.node !== null);
      const leaders = up.filter((h) => h.node!.status.role === Role.Leader);
      if (leaders.length !== 1) return false;
      const lead = leaders[0]!.node!.status;
      if (lead.term < me.lostTerm) return false;
      const members = [...lead.conf.voters, ...lead.conf.learners];
      for (const h of up) {
        if (!members.includes(h.id)) continue;
        const s = h.node!.status;
        if (s.term !== lead.term || (h !== leaders[0] && s.leader !== lead.id)) return false;
      }
    }
    return true;
  }

  /** Once per tick: the roles for the trace, and after healing, liveness probes. */
  private clockLoop(at: number): void {
    this.schedule(at, () => {
      this.trace.mark(this.now, 3);
      if (this.trace.readable) {
        const roles = this.groups.map((g) => g.roles()).join(' | ');
        this.log(() => `tick: ${roles}`);
      }
      if (this.healedAt >= 0 && this.liveAt < 0) for (const g of this.groups) g.probe();
      this.clockLoop(at + 1);
    });
  }

  /** Faults end: links heal, crashed nodes come back, no more nemesis. */
  private heal(): void {
    this.healedAt = this.now;
    this.nemesis.stop();
    this.network.healLinks();
    this.network.faults = calmLinks;
    this.log(() => 'HEAL: links restored, crashed nodes restart, no more faults');
    for (const m of this.machines) {
      m.armed = false;
      this.restart(m);
    }
    this.schedule(this.now + this.profile.livenessTicks, () => {
      const stuck = this.groups.find((g) => g.liveAt < 0);
      if (stuck !== undefined) {
        throw stuck.own(new Violation('liveness', `no proposal committed within ${this.profile.livenessTicks} ticks after faults healed (${stuck.describe()})`));
      }
    });
  }
}
