// Test-only seam: deliberate bugs of the replica shell that the simulator must catch (like
// src/raft/mutations.ts for the core). Nothing outside test/ may set these.
export const shellMutations = {
  /** Answer a write once the leader's own append is durable, before a quorum has it (before commit). */
  answerBeforeCommit: false,
  /** Send acknowledgements (AppendResp) before the append they acknowledge is synced. */
  ackBeforeSync: false,
  /** Serve a stale read without waiting for the apply whose answers already left. */
  staleReadSkipsBarrier: false,
  /** Release a read on a read-index answer to a request of an earlier start of the process. */
  readAcceptsEarlierStart: false,
  /** Let reads join a follower's read barrier after its ReadIndex has left (until it resolves). */
  readJoinsSentBarrier: false,
};

export function resetShellMutations(): void {
  for (const key of Object.keys(shellMutations) as (keyof typeof shellMutations)[]) shellMutations[key] = false;
}
