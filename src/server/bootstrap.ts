// A placement replica started with initial shard groups (Kubernetes: --bootstrap-groups) writes the
// first cluster configuration itself, so no separate init Job has to run. Every placement replica
// tries, on every start: initCluster is a compare-and-set against "no configuration yet", so the
// first to commit wins, later tries (restarts, the other replicas) find a configuration and change
// nothing, and a cluster resharded since keeps its configuration.
import { initCluster } from '../resharding/admin.ts';
import type { GroupInfo } from '../placement/config.ts';

export interface BootstrapOptions {
  placement: string[];
  groups: GroupInfo[];
  log: (line: string) => void;
  /** Stops the retries (the server is shutting down). */
  stopped: () => boolean;
  retryMs?: number;
}

/** Retries until a configuration exists (the placement group needs a quorum of pods first). */
export async function bootstrapCluster(o: BootstrapOptions): Promise<void> {
  for (let attempt = 1; !o.stopped(); attempt++) {
    try {
      const c = await initCluster(o.placement, o.groups);
      o.log(`bootstrap: cluster configuration in force (epoch ${c.epoch}, ${c.groups.length} shard groups)`);
      return;
    } catch (e) {
      if (attempt === 1 || attempt % 10 === 0) o.log(`bootstrap: no configuration written yet (${(e as Error).message}); retrying`);
      await new Promise((r) => setTimeout(r, o.retryMs ?? 1000));
    }
  }
}
