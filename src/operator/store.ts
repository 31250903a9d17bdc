// The store's own state and the store-side actions, through the same admin paths the CLI uses:
// the placement group's configuration (src/resharding/admin.ts), each replica's status, and
// membership changes (src/membership/admin-client.ts, as `kvs replica add/remove`).
import { KvsClient } from '../client/client.ts';
import { changeMembership } from '../membership/admin-client.ts';
import { initCluster, readConfig, startReshard } from '../resharding/admin.ts';
import type { ClusterConfig, GroupInfo } from '../placement/config.ts';
import type { MembershipAction, ObservedGroup, ReplicaState } from './reconcile.ts';
import { replicaIdOf } from './reconcile.ts';

export interface StoreAccess {
  /** undefined: the placement group did not answer; null: it has no configuration yet. */
  readConfig(placement: string[]): Promise<ClusterConfig | null | undefined>;
  replicaStates(groups: ObservedGroup[]): Promise<Record<number, ReplicaState>>;
  initCluster(placement: string[], groups: GroupInfo[], partitions: number): Promise<void>;
  startReshard(placement: string[], groups: GroupInfo[]): Promise<void>;
  changeMembership(addresses: string[], a: MembershipAction, timeoutMs: number): Promise<void>;
}

export const kvsStore: StoreAccess = {
  async readConfig(placement) {
    if (placement.length === 0) return undefined;
    try {
      return (await readConfig(placement)) ?? null;
    } catch {
      return undefined;
    }
  },
  async replicaStates(groups) {
    const out: Record<number, ReplicaState> = {};
    const endpoints = groups.flatMap((g) => g.pods.map((p) => p.address));
    if (endpoints.length === 0) return out;
    const client = new KvsClient({ endpoints, timeoutMs: 1500 });
    try {
      await Promise.all(
        groups.flatMap((g) =>
          g.pods
            .filter((p) => p.running)
            .map(async (p) => {
              const s = await client.status(p.address).catch(() => undefined);
              if (s) out[replicaIdOf(g.id, p.ordinal)] = { role: s.role, leaderId: s.leaderId };
            }),
        ),
      );
    } finally {
      client.close();
    }
    return out;
  },
  async initCluster(placement, groups, partitions) {
    await initCluster(placement, groups, partitions);
  },
  async startReshard(placement, groups) {
    await startReshard(placement, groups);
  },
  async changeMembership(addresses, a, timeoutMs) {
    await changeMembership(addresses, { op: a.kind === 'add-member' ? 'add' : 'remove', group: a.group, replicaId: a.replicaId, address: a.kind === 'add-member' ? a.address : '' }, timeoutMs);
  },
};
