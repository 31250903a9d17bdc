// For each deliberate bug in src/raft/mutations.ts, the fault mix that exposes it quickly. The
// mutation tests and `npm run sim -- --mutation <name>` both use these.
import type { mutations } from '../../src/raft/mutations.ts';
import type { Profile, ProfileTweak } from './profile.ts';

export type MutationName = keyof typeof mutations;

function only(p: Profile, weights: Partial<Profile['weights']>): void {
  for (const k of Object.keys(p.weights) as (keyof Profile['weights'])[]) p.weights[k] = weights[k] ?? 0;
}

export const targets: Record<MutationName, { tweak: ProfileTweak; why: string }> = {
  countOldTermEntries: {
    why: 'Figure 8 needs leaders that die before their no-op spreads: 5 nodes, one entry per message, leader crashes and isolation',
    tweak: (p) => {
      p.nodes = 5;
      p.spares = 0;
      p.raft.maxMsgBytes = 1;
      p.raft.maxInflight = 1;
      only(p, { crashLeader: 3, isolateLeader: 2, crash: 1, partition: 1 });
      p.faultRate = 0.3;
      p.partitionMax = 15;
      p.downMax = 10;
      p.links.loss = 0.2;
      p.links.delayMax = 1;
    },
  },
  skipUpToDateCheck: {
    why: 'a stale node must win an election: crashes and partitions leave nodes behind',
    tweak: (p) => {
      only(p, { crash: 2, crashLeader: 2, isolateLeader: 2, partition: 1 });
      p.faultRate = 0.3;
      p.downMax = 30;
      p.partitionMax = 40;
    },
  },
  leaseWithoutCheckQuorum: {
    why: 'an isolated leader keeps serving lease reads while the majority elects another and writes: one key, lease reads, clients that move on fast',
    tweak: (p) => {
      p.raft.leaseReads = true;
      p.leaseReadP = 0.9;
      p.getShare = 0.7;
      p.followerReadP = 0;
      p.keys = 1;
      p.clients = 5;
      p.opTimeout = 6;
      only(p, { isolateLeader: 1 });
      p.faultRate = 0.5;
      p.partitionMin = 20;
      p.partitionMax = 35;
      p.faultTicks = 600;
    },
  },
  ackBeforePersist: {
    why: 'the leader replicates before its own slow write is durable, so followers acknowledge first',
    tweak: (p) => {
      p.leaderSendsEarly = true;
      p.fsyncMax = 1.5;
    },
  },
};
