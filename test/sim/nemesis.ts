// The fault injector: during the fault phase it crashes machines (at any moment, or between a
// write and its sync), cuts links (random splits, one-way cuts, an isolated leader), compacts logs,
// changes the membership and transfers leadership, at the rate and in the mix the seed's profile
// says. Crashes and cuts hit machines, so every group they host at once; the other faults hit one
// group (with several groups, one drawn for each action).
import { decodeConf } from '../../src/raft/conf.ts';
import { EntryType, Role, type ConfState, type NodeId } from '../../src/raft/types.ts';
import type { Host } from './host.ts';
import type { Machine } from './machine.ts';
import type { Network } from './network.ts';
import type { Rng } from './prng.ts';
import type { Profile } from './profile.ts';

export interface NemesisWorld {
  readonly now: number;
  readonly machines: readonly Machine[];
  readonly groups: readonly { readonly hosts: readonly Host[]; log(text: () => string): void }[];
  readonly network: Network;
  schedule(at: number, run: () => void): void;
  crash(m: Machine, why: string): void;
  replace(m: Machine): void;
  log(text: () => string): void;
  mark(a: number, b?: number, c?: number, d?: number): void;
  count(what: string): void;
}

type Kind = keyof Profile['weights'];

export class Nemesis {
  private active = true;
  private partitionUntil = -1;

  constructor(
    private readonly world: NemesisWorld,
    private readonly rng: Rng,
    private readonly profile: Profile,
  ) {}

  start(): void {
    if (Object.values(this.profile.weights).some((w) => w > 0)) this.next();
  }

  stop(): void {
    this.active = false;
  }

  private next(): void {
    const gap = this.rng.range(0, 2 / this.profile.faultRate);
    this.world.schedule(this.world.now + gap, () => {
      if (!this.active) return;
      this.act(this.pickKind());
      this.next();
    });
  }

  private pickKind(): Kind {
    const w = this.profile.weights;
    const kinds = Object.keys(w) as Kind[];
    let r = this.rng.range(0, kinds.reduce((s, k) => s + w[k], 0));
    for (const k of kinds) {
      r -= w[k];
      if (r < 0) return k;
    }
    return kinds[kinds.length - 1] as Kind;
  }

  private act(kind: Kind): void {
    const { world, rng } = this;
    // Drawn only when there is a choice, so a one-group seed runs as it always did.
    const group = world.groups.length === 1 ? world.groups[0]! : rng.pick(world.groups);
    const up = group.hosts.filter((h) => h.up);
    const leader = up.find((h) => h.node?.status.role === Role.Leader);
    switch (kind) {
      case 'crash':
      case 'crashLeader': {
        const m = kind === 'crash' ? rng.pick(world.machines) : leader?.machine;
        if (m === undefined) return;
        if (!m.up || m.armed) return;
        world.mark(40, m.id);
        if (rng.chance(this.profile.midReadyCrash)) {
          m.armed = true; // crashes between its next write (of any group) and that write's sync
          world.log(() => `nemesis: n${m.id} will crash before its next write is synced`);
        } else {
          world.crash(m, 'nemesis'); // comes back after a random downtime
        }
        return;
      }
      case 'partition':
      case 'isolateLeader': {
        if (world.now < this.partitionUntil) return;
        const ids = world.machines.map((m) => m.id);
        let a: NodeId[];
        if (kind === 'isolateLeader') {
          if (leader === undefined) return;
          a = [leader.id];
        } else {
          const shuffled = ids.map((id) => ({ id, r: rng.float() })).sort((x, y) => x.r - y.r).map((x) => x.id);
          a = shuffled.slice(0, 1 + rng.int(ids.length - 1));
        }
        const b = ids.filter((id) => !a.includes(id));
        const oneWay = rng.chance(0.3);
        const swap = oneWay && rng.chance(0.5);
        const [from, to] = swap ? [b, a] : [a, b];
        world.network.partition(from, to, oneWay);
        const until = world.now + rng.range(this.profile.partitionMin, this.profile.partitionMax);
        this.partitionUntil = until;
        world.mark(41, a.length, oneWay ? 1 : 0);
        world.count(oneWay ? 'partitions (one-way)' : 'partitions (symmetric)');
        world.log(() => `nemesis: partition [${from}] ${oneWay ? '-/->' : '<-/->'} [${to}] until ${until.toFixed(3)}`);
        world.schedule(until, () => {
          world.network.healLinks();
          world.log(() => 'nemesis: links healed');
        });
        return;
      }
      case 'replace': {
        // The operator's rule (docs/raft.md): one replaced replica at a time, and only once every
        // other replica of each group it hosts holds entries and has caught up since its own start.
        // And the others keep a quorum of the configuration without it.
        const m = rng.pick(world.machines);
        if (m.armed || m.replaced) return;
        for (const g of world.groups) {
          if (!g.hosts.some((h) => h.node?.status.role === Role.Leader)) return;
          // Every configuration a replica of the group holds or could fall back to, not just the
          // leader's: its newest one may not be committed yet (seed 1709372348).
          for (const conf of g.hosts.flatMap(configurationsHeld)) {
            if (conf.voters.filter((id) => id !== m.id).length < Math.floor(conf.voters.length / 2) + 1) return;
          }
          for (const h of g.hosts) {
            if (h.machine === m) continue;
            // Blank by its store's mark, or (whatever the mark says) not yet holding what the
            // group had committed when its own disk was replaced.
            if (h.machine.replaced || h.disk.blank || h.node?.blank === true || h.disk.lastIndex() < h.mustHold) return;
            if (h.founder && h.disk.lastIndex() === 0) return;
          }
        }
        world.mark(45, m.id);
        world.replace(m);
        return;
      }
      case 'compact': {
        if (up.length === 0) return;
        const h = rng.pick(up);
        const s = h.node?.status;
        if (s === undefined || s.applied <= s.firstIndex - 1) return;
        const index = s.firstIndex + rng.int(s.applied - s.firstIndex + 1);
        world.mark(42, h.id, index);
        group.log(() => `nemesis: n${h.id} compacts to ${index}`);
        h.proc?.replica.compact(index);
        world.count('compactions');
        return;
      }
      case 'conf': {
        const replica = leader?.proc?.replica;
        if (leader === undefined || !replica) return;
        // No membership change while a replaced disk waits to start, or its replica has not caught
        // up (the operator's rule, docs/raft.md): a leader cut off from it still counts its old
        // acknowledgements, and a removal could leave the blank replica's vote needed (seed 1126983614).
        if (world.machines.some((x) => x.replaced) || group.hosts.some((h) => h.node?.blank === true || h.disk.blank)) return;
        const conf = replica.node.status.conf;
        const members = [...conf.voters, ...conf.learners];
        const options: { type: 'add-learner' | 'promote' | 'remove'; node: NodeId }[] = [];
        for (const h of group.hosts) if (!members.includes(h.id)) options.push({ type: 'add-learner', node: h.id });
        for (const id of conf.learners) options.push({ type: 'promote', node: id }, { type: 'remove', node: id });
        const minVoters = this.profile.nodes >= 5 ? 3 : 2;
        if (conf.voters.length > minVoters) for (const id of conf.voters) options.push({ type: 'remove', node: id });
        if (options.length === 0) return;
        const change = rng.pick(options);
        const before = replica.node.status.lastIndex;
        replica.proposeConf(change).catch(() => {}); // its fate shows in the log
        const at = replica.node.status.lastIndex;
        const ok = at !== before;
        world.mark(43, change.node, ok ? 1 : 0);
        if (ok) world.count(`conf changes proposed (${change.type})`);
        group.log(() => `nemesis: n${leader.id} proposes ${change.type} n${change.node}: ${ok ? `at ${at}` : 'refused'}`);
        return;
      }
      case 'transfer': {
        const replica = leader?.proc?.replica;
        if (leader === undefined || !replica) return;
        const to = rng.pick(replica.node.status.conf.voters);
        const ok = replica.transferLeadership(to);
        world.mark(44, leader.id, to);
        if (ok && to !== leader.id) world.count('leadership transfers started');
        group.log(() => `nemesis: n${leader.id} transfers leadership to n${to}: ${ok}`);
        return;
      }
    }
  }
}

/**
 * The configurations a replica is in or may return to: the one it runs, the newest in its durable
 * log (after a restart), and the one at its durable commit index (what a newer, uncommitted entry
 * rolls back to).
 */
function configurationsHeld(h: Host): ConfState[] {
  const out: ConfState[] = [];
  if (h.node) out.push(h.node.status.conf);
  const disk = h.disk;
  let newest: ConfState | undefined;
  let atCommit: ConfState | undefined;
  for (let i = disk.lastIndex(); i > disk.base.index && atCommit === undefined; i--) {
    const e = disk.entry(i);
    if (e?.type !== EntryType.Conf) continue;
    const conf = decodeConf(e.data);
    newest ??= conf;
    if (i <= disk.hard.commit) atCommit = conf;
  }
  out.push(newest ?? disk.base.conf, atCommit ?? disk.base.conf);
  // An empty store (a learner not yet started) holds no configuration.
  return out.filter((c) => c.voters.length > 0);
}
