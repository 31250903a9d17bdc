// Etcd's "strict reconfiguration check", on the leader's view of its followers. A configuration
// change takes effect when its entry is appended, and from then on every commit (that entry's
// included) needs a quorum of the *new* voters. If fewer of them are reachable than that quorum,
// nothing commits any more, CheckQuorum steps the leader down and no leader can be elected until
// enough of them come back. So a change of the voters is made only if the voters of the new
// configuration that are recently active (the leader's progress `active` flag, plus the leader
// itself) are a quorum of it. Pure: the executor calls it with the node's status.
import { quorum } from '../raft/conf.ts';
import type { ConfState } from '../raft/types.ts';

/** What of the leader's status these checks read (RaftNode.status). */
export interface LeaderView {
  id: number;
  conf: ConfState;
  progress: readonly { id: number; match: number; active: boolean }[];
}

/** Recently active in the leader's eyes: the leader itself, or a follower that answered lately. */
export function isActive(st: LeaderView, id: number): boolean {
  return id === st.id || st.progress.some((p) => p.id === id && p.active);
}

/**
 * Why the configuration with `voters` would have no active quorum (undefined: it has one).
 * `change` says what is being done, for the message ("removing voter 3").
 */
export function activeQuorumProblem(st: LeaderView, voters: readonly number[], change: string): string | undefined {
  const active = voters.filter((v) => isActive(st, v));
  const need = quorum(voters.length);
  if (active.length >= need) return undefined;
  const silent = voters.filter((v) => !isActive(st, v));
  return (
    `${change} would leave voters ${voters.join(', ')}, which need ${need} active to commit, and only ${active.length} ` +
    `${active.length === 1 ? 'is' : 'are'} (${active.join(', ') || 'none'}); not responding: ${silent.join(', ')}. ` +
    `The group would stop committing until they are back: bring them back (or remove them first), then retry`
  );
}

/**
 * Whom the leader hands leadership to before it is removed: a recently active voter (a silent one
 * could never take over, and the leader refuses writes while it waits). `preferred` if it is one:
 * the core's pick for a leader that leaves (RaftNode.transferTarget, as a graceful stop: caught
 * up, heard from without a break for longest — not a replica restarted moments ago, which the
 * others may not reach yet). Else the one with the highest match.
 */
export function transferTarget(st: LeaderView, preferred?: number): number | undefined {
  const candidates = st.progress.filter((p) => p.id !== st.id && p.active && st.conf.voters.includes(p.id));
  if (preferred !== undefined && candidates.some((p) => p.id === preferred)) return preferred;
  return [...candidates].sort((a, b) => b.match - a.match || a.id - b.id)[0]?.id;
}
