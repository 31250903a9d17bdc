// Cluster administration through the placement group: create the first configuration, change the
// set of shard groups, and follow a reshard until every hand-off is complete.
import { KvsClient } from '../client/client.ts';
import { loadXxh64 } from '../partition/index.ts';
import { CONFIG_KEY, decodeConfig, encodeConfig, initialConfig, reshard, type ClusterConfig, type GroupInfo } from '../placement/config.ts';
import { placementWatcher } from '../client/placement-watcher.ts';
import { patiently, type Patience } from './patience.ts';

/** Writes the first configuration unless one exists; returns the configuration in force. */
export async function initCluster(placement: string[], groups: GroupInfo[], partitions?: number): Promise<ClusterConfig> {
  const client = new KvsClient({ endpoints: placement, timeoutMs: 15_000 });
  try {
    const existing = await client.get(CONFIG_KEY);
    if (existing) return decodeConfig(existing);
    const config = initialConfig(await loadXxh64(), groups, partitions);
    const r = await client.cas(CONFIG_KEY, null, encodeConfig(config));
    return r.ok ? config : decodeConfig(r.current!);
  } finally {
    client.close();
  }
}

/**
 * Starts a reshard to exactly `groups` (ids with their replicas). Fails if one is in progress.
 * When `stored(c)` says the configuration read is this reshard's already (an earlier attempt that
 * timed out stored it), that configuration is returned and nothing is written.
 */
export async function startReshard(placement: string[], groups: GroupInfo[], timeoutMs?: number, stored?: (c: ClusterConfig) => boolean): Promise<ClusterConfig> {
  const watcher = placementWatcher(placement, undefined, timeoutMs);
  try {
    const h64 = await loadXxh64();
    // Checked on the very configuration the CAS would replace, so no write can slip in between.
    return await watcher.update((c) => (stored?.(c) ? c : reshard(h64, c, groups)));
  } finally {
    watcher.stop();
  }
}

/** One read of the configuration, failing after `timeoutMs` (e.g. while the placement group has no leader). */
export async function readConfig(placement: string[], timeoutMs = 5000): Promise<ClusterConfig | undefined> {
  const client = new KvsClient({ endpoints: placement, timeoutMs });
  try {
    const raw = await client.get(CONFIG_KEY);
    return raw ? decodeConfig(raw) : undefined;
  } finally {
    client.close();
  }
}

/**
 * The configuration, read by an admin command that waits (patience.ts) while the placement group
 * cannot answer: a group whose processes were just killed answers once it has elected, in seconds,
 * and one read's 5 s deadline cut `kvs reshard` short while it did.
 */
export function awaitConfig(placement: string[], p: Patience): Promise<ClusterConfig | undefined> {
  return patiently('the placement group to answer with the cluster configuration', (left) => readConfig(placement, Math.min(5000, left)), p);
}

/** Polls until no hand-off is pending; `progress(done, total)` after each poll. */
export async function waitForMoves(placement: string[], total: number, progress?: (done: number, total: number) => void, timeoutMs = 600_000): Promise<ClusterConfig> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const c = await readConfig(placement).catch(() => undefined);
    if (c) {
      progress?.(total - c.moves.length, total);
      if (c.moves.length === 0) return c;
    }
    if (Date.now() > until) throw new Error(`hand-offs still pending after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
