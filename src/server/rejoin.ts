// A founding replica that starts with an empty data directory (on Kubernetes: a founder pod whose
// volume was lost and replaced) cannot tell from its disk whether its group is new or has run
// without it. Bootstrapping as a founder, it would be a voter with an empty log and no vote cast:
// it could elect a peer that lacks entries the group committed, and they would be lost (a wiped
// volume plus one more failure). So before it starts, it asks the other founders: any of them at a
// term above 0 means the group has run, and the replica then starts outside the configuration, as
// a joining replica does: it votes and campaigns only once the leader's log or snapshot has given
// it the configuration (raft/node.ts), i.e. once it holds what the group committed.
//
// No answer within the probe's time (a new group, whose other founders are probing too) means a
// new group: only a lost volume at the same time as every other founder being unreachable for that
// long is still exposed.
import { REJOIN_PROBE_MS } from '../cluster/start-bound.ts';

/** How long a founder with an empty data directory looks for a running group (kept with the other start waits). */
export { REJOIN_PROBE_MS };
const ROUND_MS = 500;

/** The term a replica at `address` reports, or undefined when it does not answer in time. */
export type TermProbe = (address: string, timeoutMs: number) => Promise<number | undefined>;

/**
 * Whether any of `peers` reports a term above 0 within `probeMs`: the group has run before. Stops
 * early once every peer has answered, all at term 0 (every founder is new too).
 */
export async function groupHasRun(peers: readonly string[], probe: TermProbe, probeMs = REJOIN_PROBE_MS, now: () => number = Date.now): Promise<boolean> {
  if (peers.length === 0) return false;
  const end = now() + probeMs;
  const answeredNew = new Set<string>();
  while (now() < end) {
    const started = now();
    const terms = await Promise.all(peers.map((p) => probe(p, Math.max(1, Math.min(ROUND_MS * 2, end - started)))));
    for (const [i, t] of terms.entries()) {
      if (t === undefined) continue;
      if (t > 0) return true;
      answeredNew.add(peers[i]!);
    }
    if (answeredNew.size === peers.length) return false;
    const wait = started + ROUND_MS - now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  return false;
}
