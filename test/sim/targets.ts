// For each deliberate bug in src/raft/mutations.ts (the core) and src/replica/mutations.ts (the
// shell), the fault mix that exposes it quickly. The mutation tests and
// `npm run sim -- --mutation <name>` both use these.
import { mutations } from '../../src/raft/mutations.ts';
import { shellMutations } from '../../src/replica/mutations.ts';
import { storageMutations } from '../../src/storage/mutations.ts';
import type { Profile, ProfileTweak } from './profile.ts';

export type MutationName = keyof typeof mutations | keyof typeof shellMutations | keyof typeof storageMutations;

/** Switches one deliberate bug on or off, in whichever seam holds it. */
export function setMutation(name: MutationName, on: boolean): void {
  if (name in mutations) mutations[name as keyof typeof mutations] = on;
  else if (name in storageMutations) storageMutations[name as keyof typeof storageMutations] = on;
  else shellMutations[name as keyof typeof shellMutations] = on;
}

function only(p: Profile, weights: Partial<Profile['weights']>): void {
  for (const k of Object.keys(p.weights) as (keyof Profile['weights'])[]) p.weights[k] = weights[k] ?? 0;
}

/** Disk replacements among crashes, with a lagging replica: what a blank replica must not trust. */
function replacedAndLagging(p: Profile): void {
  p.nodes = 3;
  p.spares = 0;
  only(p, { replace: 3, crash: 2, crashLeader: 3 });
  p.faultRate = 0.3;
  p.downMax = 10;
  p.links.loss = 0.15;
  p.raft.maxMsgBytes = 1;
  p.raft.maxInflight = 1;
  p.getShare = 0.3;
  p.faultTicks = 500;
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
      p.fsyncMax = 1.5;
    },
  },
  answerBeforeCommit: {
    why: 'the leader writes fast and its followers slowly: an answer at its own sync precedes the quorum',
    tweak: (p) => {
      p.fsyncMax = 1.5;
      p.getShare = 0.2;
    },
  },
  walDurableBeforeSync: {
    why: 'slow syncs leave a window between a log record written and synced, in which a crash loses it',
    tweak: (p) => {
      p.fsyncMax = 1.5;
    },
  },
  applyIgnoresHeldBack: {
    why: 'writes to few keys, applied in quick succession while LMDB commits them later',
    tweak: (p) => {
      p.fsyncMax = 1.5;
    },
  },
  hardStateUnsynced: {
    why: 'crashes soon after elections: a vote not synced is forgotten, and the restarted node votes again in the same term',
    tweak: (p) => {
      only(p, { crash: 2, crashLeader: 3, isolateLeader: 1, partition: 1 });
      p.faultRate = 0.3;
      p.downMax = 5;
      p.fsyncMax = 1.5;
    },
  },
  walReleasedEarly: {
    why: 'slow syncs leave LMDB behind the log, so a crash finds records dropped that LMDB does not hold',
    tweak: (p) => {
      p.fsyncMax = 1.5;
    },
  },
  ackBeforeSync: {
    why: 'slow syncs leave a window between a follower receiving an append and making it durable',
    tweak: (p) => {
      p.fsyncMax = 1.5;
    },
  },
  staleReadSkipsBarrier: {
    why: 'slow syncs keep an answered apply unsynced while the same client reads stale where it wrote',
    tweak: (p) => {
      p.fsyncMax = 1.5;
      p.getShare = 0.5;
      p.staleReadP = 0.9;
      p.followerReadP = 0;
      p.keys = 1;
    },
  },
  readAcceptsEarlierStart: {
    why: 'read-index answers delayed past a crash and quick restart of the follower that asked, which reads again at once',
    tweak: (p) => {
      p.nodes = 3;
      only(p, { crash: 3 });
      p.faultRate = 0.1;
      p.clients = 10;
      p.downMax = 2;
      p.links.slowP = 0.2;
      p.links.slowMax = 20;
      p.followerReadP = 0.9;
      p.leaseReadP = 0;
      p.staleReadP = 0;
      p.getShare = 0.6;
      p.keys = 1;
    },
  },
  blankMarkNotKept: {
    why: 'a replaced replica crashes again before it caught up, while the leader dies and the third replica lags: 3 nodes, disk replacements, crashes, loss, one entry per message',
    tweak: replacedAndLagging,
  },
  blankClearsAtFirstEntry: {
    why: 'a replaced replica caught up part of the way when the leader dies and the third replica lags: the same mix',
    tweak: replacedAndLagging,
  },
  readJoinsSentBarrier: {
    why: 'follower reads that join a read-index request already on its way, past a write answered meanwhile: one key, slow links',
    tweak: (p) => {
      p.followerReadP = 0.9;
      p.leaseReadP = 0;
      p.staleReadP = 0;
      p.getShare = 0.6;
      p.keys = 1;
      p.clients = 5;
      p.links.slowP = 0.3;
      p.links.slowMax = 10;
    },
  },
};
