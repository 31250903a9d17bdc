// Every seed that ever failed, with what it showed (the four snapshot-livelock seeds are from the
// earlier, test-only shell; they still pass). `open` entries are core bugs not fixed yet: the
// sweep skips them and regressions.test.ts runs them as todo; once fixed, mark them `fixed` and they
// become ordinary tests that must pass. A seed names a run of this simulator as it is: changing how
// profiles or events are drawn reshuffles seeds, so re-find them after such a change.
import type { Invariant } from './invariants.ts';
import type { MutationName } from './targets.ts';

export interface KnownFailure {
  seed: number;
  nodes?: number;
  /** Run with this target's fault mix (no mutation flag is set). */
  target?: MutationName;
  invariant: Invariant;
  status: 'open' | 'fixed';
  note: string;
}

// Snapshot livelock: the follower kept chunks 0..k of an interrupted transfer of the same snapshot
// (index, term); when a leader starts that snapshot again from chunk 0, the follower answers "have
// up to k", which the leader never sent, so it ignores the answer and resends chunk 0 forever.
// Fixed by giving every transfer an id (sender, term, transfer) that chunks and acks carry.
const snapshotLivelock = 'snapshot transfer livelock after an interrupted transfer of the same snapshot';

export const knownFailures: KnownFailure[] = [
  {
    seed: 3141600233,
    nodes: 5,
    invariant: 'core-assertion',
    status: 'fixed',
    note: 'with LMDB checkpointed behind the log, the replica compacted past the applies LMDB had committed; a snapshot for a lagging follower was then captured below the log base (compaction now stops at the visible applied index)',
  },
  {
    seed: 200053,
    nodes: 5,
    invariant: 'ready-contract',
    status: 'fixed',
    note: 'one Ready compacted into a run and replaced its tail; both cuts rewrote the committed run, so the store no longer opened (log-edits.ts)',
  },
  {
    seed: 200022,
    nodes: 5,
    invariant: 'durable-answer',
    status: 'fixed',
    note: "checker: an answer was held against the voters after a later removal, not the commit's",
  },
  {
    seed: 74247096,
    nodes: 3,
    invariant: 'linearizability',
    status: 'fixed',
    note: 'a read-index answer to a request sent before a crash released the restarted follower\'s first read (read ids began at 1 again): the process start is now part of the ctx',
  },
  {
    seed: 2,
    target: 'blankMarkNotKept',
    invariant: 'leader-completeness',
    status: 'fixed',
    note: 'a replaced replica crashed again before it caught up and restarted as any voter (blankStart came from an empty directory at this start); with the leader down it elected the lagging replica, which lacked committed entries (the store now keeps a blank mark)',
  },
  {
    seed: 27,
    target: 'blankClearsAtFirstEntry',
    invariant: 'leader-completeness',
    status: 'fixed',
    note: 'a replaced replica stopped being blank at its first entry; holding part of the leader\'s log when the leader died, it elected the lagging replica without committed entries (blank now ends when its log matches a leader\'s through an entry of its term and its commit index)',
  },
  {
    seed: 1060,
    invariant: 'liveness',
    status: 'fixed',
    note: 'with founders starting blank as the server starts them: a voter was removed while the third founder, cut off since the start, held nothing; the two left needed its vote and it refused every candidate holding entries, forever (a removal now needs a quorum of the voters left at the commit point)',
  },
  { seed: 1083, invariant: 'liveness', status: 'fixed', note: 'as seed 1060' },
  {
    seed: 2001,
    nodes: 5,
    invariant: 'durable-commit',
    status: 'fixed',
    note: 'checker: a leader counted the acknowledgement a replica sent before its disk was replaced, and the checker held against it that the new disk lacks the entry (it now counts what the replaced disk held)',
  },
  {
    seed: 1126983932,
    invariant: 'ready-contract',
    status: 'fixed',
    note: 'a follower completed image 51 and, before its next Ready, took the first chunk of image 52 (the leader had compacted again): one Ready staged 52 over 51, then installed 51 ("no complete staged image"); a chunk of another image is now not taken while a completed one waits for its Ready',
  },
  {
    seed: 1126983614,
    invariant: 'liveness',
    status: 'fixed',
    note: 'nemesis: a leader cut off from a replaced replica that had not caught up removed a voter (it still counted the old disk\'s acknowledgements); the blank replica\'s vote was then needed by every candidate and refused to all. The operator\'s rule (docs/raft.md) forbids membership changes until a replaced replica caught up; the nemesis now keeps it',
  },
  {
    seed: 1709372348,
    invariant: 'liveness',
    status: 'fixed',
    note: 'nemesis: a disk was replaced while the leader ran an uncommitted promotion ([1,2,3]); the others still had voters [1,2], so the replaced replica\'s vote was needed and refused. The replace rule now holds for every configuration any replica holds or may fall back to',
  },
  {
    seed: 3300005768,
    nodes: 5,
    invariant: 'liveness',
    status: 'fixed',
    note: 'a leader appended its own removal ([1,2,3,4] -> [1,2,4]) and was cut off; the entry existed only in its log, so it refused the others\' votes (its log was newer), and it never campaigned itself (not in its latest configuration), with a fourth voter down: no leader for good. A voter removed by a configuration not yet committed now still campaigns (Raft dissertation 4.2.2)',
  },
  { seed: 80, invariant: 'liveness', status: 'fixed', note: snapshotLivelock },
  { seed: 6541, invariant: 'liveness', status: 'fixed', note: snapshotLivelock },
  { seed: 7354, invariant: 'liveness', status: 'fixed', note: snapshotLivelock },
  { seed: 33274, invariant: 'liveness', status: 'fixed', note: snapshotLivelock },
];
