// Swarm testing: each seed draws its own mix of faults, so some runs are calm, some lose half their
// messages, some live in long partitions, some crash constantly. A bug that one kind of fault
// masks (e.g. constant crashes hiding a lease bug) still meets seeds without that fault.
import type { LinkFaults } from './network.ts';
import type { Rng } from './prng.ts';

export interface Profile {
  name: string;
  nodes: number;
  /** Raft groups, each with a replica on every node (machine): 1 unless a run asks for more. */
  groups: number;
  /** Nodes that start outside the configuration (only with membership changes). */
  spares: number;
  links: LinkFaults;
  /** Nemesis actions per tick, and the weight of each kind (0 = never). */
  faultRate: number;
  weights: { crash: number; crashLeader: number; partition: number; isolateLeader: number; compact: number; conf: number; transfer: number; replace: number };
  /** Shortest and longest partition, and longest downtime, in ticks. */
  partitionMin: number;
  partitionMax: number;
  downMax: number;
  /** Chance that a crash lands between a write and its sync. */
  midReadyCrash: number;
  /** Time to make a Ready durable, in ticks (0: synchronous). */
  fsyncMax: number;
  /** Per-node clock rate error (the lease assumes a bound on it). */
  clockDrift: number;
  raft: {
    electionTicks: number;
    heartbeatTicks: number;
    maxInflight: number;
    maxMsgBytes: number;
    snapshotChunkBytes: number;
    snapshotWindow: number;
    leaseReads: boolean;
    clockDriftTicks: number;
    quietAfterTicks: number;
  };
  /**
   * Lulls: the last `ticks` of every `every` ticks, clients start nothing, so idle leaders go quiet
   * and the faults meanwhile hit quiet groups.
   */
  lull: { every: number; ticks: number } | undefined;
  clients: number;
  keys: number;
  /** Chance that a read uses the lease (when leaseReads) and that it goes to a random node. */
  leaseReadP: number;
  followerReadP: number;
  /** Chance that a read is stale (served by the replica asked, after its visibility barrier). */
  staleReadP: number;
  /** Share of client operations that are gets (the rest: puts, cas, deletes). */
  getShare: number;
  /** A client gives up on an operation after this many ticks (and tries another node). */
  opTimeout: number;
  /** Ticks of faults before everything heals. */
  faultTicks: number;
  /** After healing: a proposal must commit within this many ticks. */
  livenessTicks: number;
  /** Clients keep going this long after liveness is shown. */
  drainTicks: number;
}

export type ProfileTweak = (p: Profile, rng: Rng) => void;

/** Draws a profile for one seed. `nodes` fixes the cluster size (else 3 or 5). */
export function drawProfile(rng: Rng, nodes?: number): Profile {
  const n = nodes ?? rng.pick([3, 5]);
  const on = (p: number): boolean => rng.chance(p);
  const weights = {
    crash: on(0.5) ? rng.range(0.5, 3) : 0,
    crashLeader: on(0.3) ? rng.range(0.5, 2) : 0,
    partition: on(0.5) ? rng.range(0.5, 3) : 0,
    isolateLeader: on(0.4) ? rng.range(0.5, 2) : 0,
    compact: on(0.6) ? rng.range(0.5, 3) : 0,
    conf: on(0.4) ? rng.range(0.5, 2) : 0,
    transfer: on(0.4) ? rng.range(0.5, 2) : 0,
    replace: 0, // drawn last (below)
  };
  const calm = on(0.1);
  if (calm) for (const k of Object.keys(weights) as (keyof typeof weights)[]) weights[k] = 0;
  const links: LinkFaults = {
    loss: !calm && on(0.4) ? rng.pick([0.01, 0.05, 0.15, 0.3]) : 0,
    duplicate: !calm && on(0.3) ? rng.pick([0.01, 0.05, 0.2]) : 0,
    delayMin: 0.02,
    delayMax: rng.pick([0.1, 0.3, 0.8, 1.5]),
    slowP: !calm && on(0.3) ? rng.pick([0.01, 0.05, 0.1]) : 0,
    slowMax: rng.pick([3, 10, 25]),
  };
  const kinds = Object.entries(weights).filter(([, w]) => w > 0).map(([k]) => k);
  const lossName = links.loss > 0 ? `loss${Math.round(links.loss * 100)}` : '';
  const profile: Profile = {
    name: calm ? 'calm' : [...kinds, lossName].filter(Boolean).join('+') || 'links',
    nodes: n,
    groups: 1,
    spares: weights.conf > 0 && n === 5 && on(0.5) ? 2 : 0,
    links,
    faultRate: rng.pick([0.05, 0.1, 0.2, 0.5]),
    weights,
    partitionMin: 1,
    partitionMax: rng.pick([10, 40, 150]),
    downMax: rng.pick([5, 30, 100]),
    midReadyCrash: on(0.5) ? 0.3 : 0,
    fsyncMax: on(0.7) ? rng.pick([0.1, 0.5, 1.5]) : 0,
    clockDrift: 0.01,
    raft: {
      electionTicks: 10,
      heartbeatTicks: rng.pick([1, 2, 3]),
      maxInflight: rng.pick([1, 4, 64]),
      maxMsgBytes: rng.pick([1, 200, 4096]),
      snapshotChunkBytes: rng.pick([16, 64, 1024]),
      snapshotWindow: rng.pick([1, 2, 4]),
      leaseReads: on(0.5),
      clockDriftTicks: 2,
      quietAfterTicks: 20,
    },
    clients: 2 + rng.int(4),
    keys: 1 + rng.int(4),
    leaseReadP: 0.5,
    followerReadP: 0.3,
    staleReadP: 0.2,
    getShare: 0.4,
    opTimeout: rng.pick([8, 25]),
    faultTicks: 150 + rng.int(350),
    livenessTicks: 300,
    drainTicks: 30,
    lull: undefined,
  };
  // Drawn last, so every earlier field of a seed's profile is what it was before quiet groups.
  profile.raft.quietAfterTicks = rng.pick([0, 2, 5, 20]);
  if (on(0.5)) {
    const every = rng.pick([80, 150, 300]);
    profile.lull = { every, ticks: Math.min(rng.pick([40, 80]), every / 2) };
  }
  // Disk replacements, drawn after everything else for the same reason (calm seeds stay calm).
  if (!calm && on(0.3)) {
    profile.weights.replace = rng.range(0.5, 2);
    profile.name = profile.name === 'links' ? 'replace' : `replace+${profile.name}`;
  }
  return profile;
}
