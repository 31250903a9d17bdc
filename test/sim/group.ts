// One simulated Raft group: its replicas (one per machine), its safety checker, its clients and
// their history, and its liveness probes. Several groups share the machines, the network and the
// nemesis of one world, as shard groups share the processes of a `kvs up` cluster; each group is
// checked on its own (safety, liveness, linearizability of its history).
import { Role, type Entry, type Message, type NodeId, type Ready } from '../../src/raft/types.ts';
import { StorageError } from '../../src/storage/index.ts';
import { Clients, writeCommand, type ClientWorld } from './clients.ts';
import { describeReady } from './describe.ts';
import { Host, type HostWorld } from './host.ts';
import { Checker, Violation } from './invariants.ts';
import type { Machine } from './machine.ts';
import type { Rng } from './prng.ts';
import type { Profile } from './profile.ts';

/** What a group needs from the world around it. */
export interface GroupWorld {
  readonly now: number;
  readonly profile: Profile;
  readonly healedAt: number;
  schedule(at: number, run: () => void): void;
  send(g: Group, m: Message): void;
  report(v: Violation): void;
  log(text: () => string): void;
  mark(a: number, b?: number, c?: number, d?: number): void;
  count(what: string, n?: number): void;
  /** A probe of this group committed after healing. */
  live(g: Group): void;
}

export class Group implements HostWorld, ClientWorld {
  readonly checker: Checker;
  readonly hosts: Host[] = [];
  readonly ids: NodeId[] = [];
  readonly clients: Clients;
  /** When a probe of this group first applied after healing (-1: not yet). */
  liveAt = -1;
  private probes = 0;
  private readonly probing = new Set<string>();
  /** Probe entries proposed after healing, by index/term: the first applied one shows liveness. */
  private readonly probeEntries = new Map<string, number>();

  constructor(
    /** 0-based; its store in each machine is `g<index + 1>`. */
    readonly index: number,
    /** With several groups, lines and violations of this one start with its name. */
    private readonly named: boolean,
    private readonly world: GroupWorld,
    machines: readonly Machine[],
    /** One per machine: each replica's randomness. */
    rngs: readonly Rng[],
    clientRng: Rng,
    raft: ConstructorParameters<typeof Host>[6],
  ) {
    const p = world.profile;
    this.checker = new Checker(
      () => this.hosts,
      (id, term) => {
        world.count('leaders elected');
        this.log(() => `n${id} is leader of term ${term}`);
      },
    );
    const voters = machines.map((m) => m.id).filter((id) => id <= p.nodes - p.spares);
    for (const [i, m] of machines.entries()) {
      // Spares join later: they start with an empty configuration and learn it from the log.
      const conf = voters.includes(m.id) ? { voters, learners: [] } : { voters: [], learners: [] };
      const h = new Host(m.id, m, `g${index + 1}`, conf, this, rngs[i] as Rng, raft);
      this.ids.push(m.id);
      this.hosts.push(h);
      m.hosts.push(h);
    }
    this.clients = new Clients(this, clientRng, p);
  }

  get now(): number {
    return this.world.now;
  }

  get profile(): Profile {
    return this.world.profile;
  }

  /** A node id as the trace digest records it: group 0's ids are the plain ones. */
  tag(id: NodeId): number {
    return id + 100 * this.index;
  }

  host(id: NodeId): Host | undefined {
    return this.hosts[id - 1];
  }

  // ---- For hosts and clients ----------------------------------------------------------------------

  schedule(at: number, run: () => void): void {
    this.world.schedule(at, run);
  }

  send(_from: Host, m: Message): void {
    this.world.send(this, m);
  }

  report(v: Violation): void {
    this.world.report(this.own(v));
  }

  count(what: string, n = 1): void {
    this.world.count(what, n);
  }

  /** A shell stopped on an error of its own (not the checker's): storage refused a Ready, or the core asserted. */
  fatal(h: Host, e: unknown): Violation {
    if (e instanceof Violation) return e;
    const text = e instanceof Error ? (e.stack ?? e.message) : String(e);
    return new Violation(e instanceof StorageError ? 'ready-contract' : 'core-assertion', `n${h.id}: ${text}`);
  }

  readyTaken(h: Host, rd: Ready): void {
    this.world.mark(2, this.tag(h.id), rd.entries.length * 1024 + rd.committedEntries.length, rd.messages.length);
    this.log(() => `n${h.id} ready: ${describeReady(rd)}`);
  }

  applied(h: Host, e: Entry): void {
    if (e.type !== 0) this.world.count('conf entries applied');
    const probe = this.probeEntries.get(`${e.index}/${e.term}`);
    if (probe !== undefined && this.liveAt < 0) {
      this.liveAt = this.now;
      this.log(() => `liveness: probe ${probe} applied on n${h.id}, ${(this.now - this.world.healedAt).toFixed(1)} ticks after healing`);
      this.world.live(this);
    }
  }

  installed(h: Host, index: number): void {
    this.world.count('snapshots installed');
    this.clients.installed(h, index);
  }

  log(text: () => string): void {
    this.world.log(this.named ? () => `g${this.index + 1} ${text()}` : text);
  }

  mark(a: number, b = 0, c = 0, d = 0): void {
    this.world.mark(a, b, c, d);
  }

  // ---- For the world ------------------------------------------------------------------------------

  /** The checks after every event, for every replica of the group. */
  check(): void {
    try {
      for (const h of this.hosts) this.checker.afterEvent(h);
    } catch (e) {
      throw e instanceof Violation ? this.own(e) : e;
    }
  }

  /** Roles and terms, for the trace's tick lines. */
  roles(): string {
    return this.hosts.map((h) => (h.node ? `${h.node.status.role[0]}${h.node.status.term}` : '-')).join(' ');
  }

  /** Why the group shows no liveness: each replica's role, term, commit and voters. */
  describe(): string {
    return this.hosts
      .map((x) => {
        const s = x.node?.status;
        return s ? `n${x.id}:${s.role}/t${s.term} commit=${s.commit} voters=[${s.conf.voters}]` : `n${x.id}:down`;
      })
      .join(', ');
  }

  /** After healing: propose a probe at each leader (once per leader and term) until one applies. */
  probe(): void {
    if (this.liveAt >= 0) return;
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

  /** A violation found in this group, named for it when there are several. */
  own(v: Violation): Violation {
    return this.named && !v.detail.startsWith(`g${this.index + 1}: `) ? new Violation(v.invariant, `g${this.index + 1}: ${v.detail}`) : v;
  }
}
