// The simulated world: machines running the shipped replica shell (host.ts), the network, clients
// and the nemesis, driven by one event queue in simulated time. Everything random comes from the
// seed. After every event the shells' promise continuations run (the microtask queue is drained),
// then every node is checked.
import { defaultRaftConfig } from '../../src/raft/node.ts';
import { MsgType, Role, type Entry, type Message, type NodeId, type Ready } from '../../src/raft/types.ts';
import { StorageError } from '../../src/storage/index.ts';
import { Clients, writeCommand } from './clients.ts';
import { describeMsg, describeReady } from './describe.ts';
import { Host, type HostWorld } from './host.ts';
import { Checker, Violation } from './invariants.ts';
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

export class World implements HostWorld {
  now = 0;
  readonly checker: Checker;
  readonly network: Network;
  readonly hosts: Host[] = [];
  readonly ids: NodeId[] = [];
  readonly clients: Clients;
  private readonly nemesis: Nemesis;
  private readonly queue = new EventQueue();
  private violation: Violation | undefined;
  private readonly rng: Rng;
  /** Liveness: when faults healed, when a probe committed afterwards, when the run ends. */
  healedAt = -1;
  liveAt = -1;
  private endAt = Infinity;
  private probes = 0;
  private readonly probing = new Set<string>();
  /** Probe entries proposed after healing, by index/term: the first applied one shows liveness. */
  private readonly probeEntries = new Map<string, number>();
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
      const conf = voters.includes(id) ? { voters, learners: [] } : { voters: [], learners: [] };
      const period = 1 + this.rng.range(-profile.clockDrift, profile.clockDrift);
      this.hosts.push(new Host(id, conf, this, root.fork(), raft, period));
    }
    const clientRng = root.fork();
    const nemesisRng = root.fork();
    this.clients = new Clients(this, clientRng, profile);
    this.nemesis = new Nemesis(this, nemesisRng, profile);
  }

  /** Runs to the end; throws the first Violation. */
  async run(): Promise<void> {
    const p = this.profile;
    for (const h of this.hosts) h.start();
    this.clockLoop(this.rng.range(0, 1));
    this.clients.start();
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
        for (const h of this.hosts) this.checker.afterEvent(h);
      } catch (err) {
        if (err instanceof Violation) throw err;
        // The core's own assertions (e.g. "truncating committed entry") are violations too.
        throw new Violation('core-assertion', err instanceof Error ? (err.stack ?? err.message) : String(err));
      }
      if (this.trace.events > MAX_EVENTS) throw new Violation('liveness', `more than ${MAX_EVENTS} events: runaway`);
    }
    this.clients.stop();
  }

  // ---- For hosts ----------------------------------------------------------------------------------

  schedule(at: number, run: () => void): void {
    this.queue.push(at, run);
  }

  report(v: Violation): void {
    this.violation ??= v;
  }

  /** A shell stopped on an error of its own (not the checker's): storage refused a Ready, or the core asserted. */
  fatal(h: Host, e: unknown): Violation {
    if (e instanceof Violation) return e;
    const text = e instanceof Error ? (e.stack ?? e.message) : String(e);
    return new Violation(e instanceof StorageError ? 'ready-contract' : 'core-assertion', `n${h.id}: ${text}`);
  }

  send(_from: Host, m: Message): void {
    if (m.type === MsgType.Heartbeat && m.quiet) this.count('quiet heartbeats sent');
    this.network.send(
      this.now,
      m,
      (at, msg, copy) =>
        this.schedule(at, () => {
          const to = this.hosts[msg.to - 1];
          if (to?.proc === undefined || this.network.isCut(msg.from, msg.to)) return;
          this.trace.mark(this.now, 1, msg.from, msg.to, msg.type * 8 + copy);
          this.log(() => `deliver ${describeMsg(msg)}${copy > 0 ? ' (duplicate)' : ''}`);
          to.proc.replica.step(msg);
        }),
      (msg, why) => this.log(() => `drop (${why}) ${describeMsg(msg)}`),
    );
  }

  applied(h: Host, e: Entry): void {
    if (e.type !== 0) this.count('conf entries applied');
    const probe = this.probeEntries.get(`${e.index}/${e.term}`);
    if (probe !== undefined && this.liveAt < 0) {
      this.liveAt = this.now;
      this.endAt = this.now + this.profile.drainTicks;
      this.log(() => `liveness: probe ${probe} applied on n${h.id}, ${(this.now - this.healedAt).toFixed(1)} ticks after healing`);
    }
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

  readyTaken(h: Host, rd: Ready): void {
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
    this.log(() => `n${h.id} restarts: term ${h.disk.hard.term}, log (${h.disk.base.index}, ${h.disk.lastIndex()}], applied ${h.disk.applied}`);
  }

  /** Once per tick: the roles for the trace, and after healing, liveness probes. */
  private clockLoop(at: number): void {
    this.schedule(at, () => {
      this.trace.mark(this.now, 3);
      if (this.trace.readable) {
        const roles = this.hosts.map((h) => (h.node ? `${h.node.status.role[0]}${h.node.status.term}` : '-')).join(' ');
        this.log(() => `tick: ${roles}`);
      }
      if (this.healedAt >= 0 && this.liveAt < 0) this.probe();
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
      const replica = h.proc?.replica;
      if (replica === undefined) continue;
      const s = replica.node.status;
      const key = `${h.id}:${s.term}`;
      if (s.role !== Role.Leader || this.probing.has(key)) continue;
      const n = ++this.probes;
      // A write without a session (client 0), like a door that does not retry.
      replica.propose(writeCommand(this.now, { op: 'put', key: Buffer.from('probe'), value: Buffer.from(String(n)), clientId: 0n, seq: 0 })).catch(() => {});
      const after = replica.node.status;
      if (after.lastIndex === s.lastIndex) continue;
      this.probing.add(key);
      this.probeEntries.set(`${after.lastIndex}/${after.lastTerm}`, n);
      this.log(() => `liveness: probe ${n} proposed at n${h.id} as ${after.lastIndex}/t${after.lastTerm}`);
    }
  }
}
