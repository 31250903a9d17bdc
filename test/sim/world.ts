// The simulated world: nodes with disks and clocks, the network, clients and the nemesis, driven
// by one event queue in simulated time. Everything random comes from the seed. After every event,
// each node the event touched handles its Readys and is checked.
import { defaultRaftConfig } from '../../src/raft/node.ts';
import { Role, type Entry, type Message, type NodeId, type Ready } from '../../src/raft/types.ts';
import { Clients } from './clients.ts';
import { encodeCommand } from './command.ts';
import { describeMsg, describeReady } from './describe.ts';
import { Disk } from './disk.ts';
import { Host, type Shell } from './host.ts';
import { Checker, Violation } from './invariants.ts';
import type { ApplyOutcome } from './kv.ts';
import { Nemesis } from './nemesis.ts';
import { calmLinks, Network } from './network.ts';
import { Rng } from './prng.ts';
import type { Profile } from './profile.ts';
import { EventQueue } from './queue.ts';
import type { Trace } from './trace.ts';

/** Stops a run that has gone wild (a message storm); far above any sane run. */
const MAX_EVENTS = 3_000_000;

export class World implements Shell {
  now = 0;
  readonly checker: Checker;
  readonly network: Network;
  readonly hosts: Host[] = [];
  readonly ids: NodeId[] = [];
  readonly clients: Clients;
  private readonly nemesis: Nemesis;
  private readonly queue = new EventQueue();
  private readonly touched = new Set<Host>();
  private readonly rng: Rng;
  /** Liveness: when faults healed, when a probe committed afterwards, when the run ends. */
  healedAt = -1;
  liveAt = -1;
  private endAt = Infinity;
  private probes = 0;
  private readonly probing = new Set<string>();
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
    this.checker = new Checker(() => this.hosts, (id, term) => {
      this.count('leaders elected');
      this.log(() => `n${id} is leader of term ${term}`);
    });
    const voters: NodeId[] = [];
    for (let id = 1; id <= profile.nodes; id++) {
      this.ids.push(id);
      if (id <= profile.nodes - profile.spares) voters.push(id);
    }
    const raft = { ...defaultRaftConfig, ...profile.raft };
    for (const id of this.ids) {
      // Spares join later: they start with an empty configuration and learn it from the log.
      const disk = new Disk(voters.includes(id) ? { voters, learners: [] } : { voters: [], learners: [] });
      this.hosts.push(new Host(id, disk, this, root.fork(), raft));
    }
    const clientRng = root.fork();
    const nemesisRng = root.fork();
    this.clients = new Clients(this, clientRng, profile);
    this.nemesis = new Nemesis(this, nemesisRng, profile);
  }

  /** Runs to the end; throws the first Violation. */
  run(): void {
    const p = this.profile;
    for (const h of this.hosts) {
      h.start();
      const period = 1 + this.rng.range(-p.clockDrift, p.clockDrift);
      this.tickLoop(h, this.rng.range(0, 1), period);
    }
    this.clients.start();
    this.nemesis.start();
    this.schedule(p.faultTicks, () => this.heal());
    while (this.now < this.endAt) {
      const e = this.queue.pop();
      if (e === undefined) break;
      this.now = e.at;
      try {
        e.run();
        for (const h of this.touched) {
          h.pump();
          this.checker.afterEvent(h);
        }
      } catch (err) {
        if (err instanceof Violation) throw err;
        // The core's own assertions (e.g. "truncating committed entry") are violations too.
        throw new Violation('core-assertion', err instanceof Error ? (err.stack ?? err.message) : String(err));
      } finally {
        this.touched.clear();
      }
      if (this.trace.events > MAX_EVENTS) throw new Violation('liveness', `more than ${MAX_EVENTS} events: runaway`);
    }
    this.clients.stop();
  }

  // ---- Shell (for hosts) --------------------------------------------------------------------------

  schedule(at: number, run: () => void): void {
    this.queue.push(at, run);
  }

  touch(h: Host): void {
    this.touched.add(h);
  }

  send(_from: Host, m: Message): void {
    this.network.send(
      this.now,
      m,
      (at, msg, copy) =>
        this.schedule(at, () => {
          const to = this.hosts[msg.to - 1];
          if (to === undefined || to.node === null || this.network.isCut(msg.from, msg.to)) return;
          this.trace.mark(this.now, 1, msg.from, msg.to, msg.type * 8 + copy);
          this.log(() => `deliver ${describeMsg(msg)}${copy > 0 ? ' (duplicate)' : ''}`);
          to.node.step(msg);
          this.touch(to);
        }),
      (msg, why) => this.log(() => `drop (${why}) ${describeMsg(msg)}`),
    );
  }

  applied(h: Host, e: Entry, outcome: ApplyOutcome): void {
    if (outcome.kind === 'conf') this.count('conf entries applied');
    this.clients.applied(h, e.index, e.term, outcome);
    if (outcome.kind === 'probe' && this.healedAt >= 0 && this.liveAt < 0) {
      this.liveAt = this.now;
      this.endAt = this.now + this.profile.drainTicks;
      this.log(() => `liveness: probe ${outcome.n} applied on n${h.id}, ${(this.now - this.healedAt).toFixed(1)} ticks after healing`);
    }
  }

  readReady(h: Host, ctx: Uint8Array): void {
    this.clients.readReady(h, ctx);
  }

  readFailed(h: Host, ctx: Uint8Array): void {
    this.clients.readFailed(h, ctx);
  }

  installed(h: Host, index: number): void {
    this.count('snapshots installed');
    this.clients.installed(h, index);
  }

  crashed(h: Host, where: string): void {
    this.trace.mark(this.now, 50, h.id);
    this.count(`crashes (${where})`);
    this.log(() => `n${h.id} CRASH (${where})`);
    this.clients.crashed(h);
    this.restartLater(h);
  }

  readyDone(h: Host, rd: Ready): void {
    this.trace.mark(this.now, 2, h.id, rd.entries.length * 1024 + rd.committedEntries.length, rd.messages.length);
    this.log(() => `n${h.id} ready: ${describeReady(rd)}`);
  }

  // ---- For the nemesis and clients --------------------------------------------------------------

  host(id: NodeId): Host | undefined {
    return this.hosts[id - 1];
  }

  crash(h: Host, why: string): void {
    h.crash();
    this.crashed(h, why);
  }

  restartLater(h: Host): void {
    if (this.healedAt >= 0) return this.restart(h);
    this.schedule(this.now + this.rng.range(1, this.profile.downMax), () => this.restart(h));
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

  private restart(h: Host): void {
    if (h.up) return;
    h.start();
    this.trace.mark(this.now, 51, h.id);
    this.count('restarts');
    this.log(() => `n${h.id} restarts: term ${h.disk.hard.term}, log (${h.disk.base.index}, ${h.disk.lastIndex()}], applied ${h.disk.kv.applied}`);
    this.touch(h);
  }

  private tickLoop(h: Host, at: number, period: number): void {
    this.schedule(at, () => {
      if (h.node !== null) {
        const before = this.trace.readable ? h.node.status.role : undefined;
        h.node.tick();
        this.touch(h);
        const after = this.trace.readable ? h.node.status.role : undefined;
        if (after !== before) this.log(() => `n${h.id} tick: ${before} -> ${after} t${h.node?.status.term}`);
      }
      this.trace.mark(this.now, 3, h.id);
      if (this.healedAt >= 0 && this.liveAt < 0) this.probe();
      this.tickLoop(h, at + period, period);
    });
  }

  /** Faults end: links heal, crashed nodes come back, no more nemesis. */
  private heal(): void {
    this.healedAt = this.now;
    this.nemesis.stop();
    this.network.healLinks();
    this.network.faults = calmLinks;
    this.log(() => 'HEAL: links restored, crashed nodes restart, no more faults');
    for (const h of this.hosts) {
      h.armed = false;
      this.restart(h);
    }
    this.schedule(this.now + this.profile.livenessTicks, () => {
      if (this.liveAt < 0) {
        const roles = this.hosts
          .map((x) => {
            const s = x.node?.status;
            return s ? `n${x.id}:${s.role}/t${s.term} commit=${s.commit} voters=[${s.conf.voters}]` : `n${x.id}:down`;
          })
          .join(', ');
        throw new Violation('liveness', `no proposal committed within ${this.profile.livenessTicks} ticks after faults healed (${roles})`);
      }
    });
  }

  /** After healing: propose a probe at each leader (once per leader and term) until one applies. */
  private probe(): void {
    for (const h of this.hosts) {
      const node = h.node;
      if (node === null) continue;
      const s = node.status;
      const key = `${h.id}:${s.term}`;
      if (s.role !== Role.Leader || this.probing.has(key)) continue;
      const res = node.propose(encodeCommand({ probe: ++this.probes }));
      if (!res.ok) continue;
      this.probing.add(key);
      this.log(() => `liveness: probe ${this.probes} proposed at n${h.id} as ${res.index}/t${res.term}`);
      this.touch(h);
    }
  }
}
