// Test-only seam: deliberate bugs the simulator must catch. Nothing outside test/ may set these;
// they are not options, not configuration, and not reachable from the CLI or the server.
export const mutations = {
  /** Commit by counting replicas for entries of older terms (the Figure 8 bug). */
  countOldTermEntries: false,
  /** Grant votes without checking that the candidate's log is at least as up to date. */
  skipUpToDateCheck: false,
  /** Treat the leader's lease as always valid, without quorum-acknowledged heartbeats. */
  leaseWithoutCheckQuorum: false,
  /** The leader counts its own entries toward a quorum before they are persisted. */
  ackBeforePersist: false,
  /**
   * A blank replica (RaftConfig.blankStart) votes as any voter, and campaigns, once it holds any
   * entry: a log that is a prefix of the one it lost can elect a lagging candidate.
   */
  blankClearsAtFirstEntry: false,
};

export function resetMutations(): void {
  for (const key of Object.keys(mutations) as (keyof typeof mutations)[]) mutations[key] = false;
}
