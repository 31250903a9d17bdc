// A stand-in for the store's admin calls in the adapter tests: the placement configuration in
// memory (changed with the real src/placement/config.ts functions), the lowest ready replica of
// each group as its leader, hand-offs that finish on the next read, and membership changes that
// can be made to hang (an operator killed in the middle of one).
import type { Xxh64 } from '../../src/partition/index.ts';
import { completeMoves, initialConfig, reshard, withReplica, withoutReplica, type ClusterConfig } from '../../src/placement/config.ts';
import { replicaIdOf, type MembershipAction } from '../../src/operator/reconcile.ts';
import type { StoreAccess } from '../../src/operator/store.ts';

export class ModelStore implements StoreAccess {
  config: ClusterConfig | null = null;
  readonly calls: string[] = [];
  /** A membership change matching this never returns. */
  hang: ((a: MembershipAction) => boolean) | undefined;

  constructor(private readonly h64: Xxh64) {}

  async readConfig(placement: string[]): Promise<ClusterConfig | null | undefined> {
    if (placement.length === 0) return undefined;
    if (this.config && this.config.moves.length > 0) this.config = completeMoves(this.config, this.config.moves.map((m) => m.partition));
    return structuredClone(this.config);
  }

  async replicaStates(groups: Parameters<StoreAccess['replicaStates']>[0]): ReturnType<StoreAccess['replicaStates']> {
    const out: Awaited<ReturnType<StoreAccess['replicaStates']>> = {};
    for (const g of groups) {
      const ready = g.pods.filter((p) => p.ready);
      const leader = ready[0] && replicaIdOf(g.id, ready[0].ordinal);
      for (const p of ready) out[replicaIdOf(g.id, p.ordinal)] = { role: replicaIdOf(g.id, p.ordinal) === leader ? 'leader' : 'follower', leaderId: leader ?? 0 };
    }
    return out;
  }

  async initCluster(_placement: string[], groups: Parameters<StoreAccess['initCluster']>[1], partitions: number): Promise<void> {
    this.calls.push(`init ${groups.map((g) => g.id).join(',')}`);
    this.config ??= initialConfig(this.h64, groups, partitions);
  }

  async startReshard(_placement: string[], groups: Parameters<StoreAccess['startReshard']>[1]): Promise<void> {
    this.calls.push(`reshard ${groups.map((g) => g.id).join(',')}`);
    this.config = reshard(this.h64, this.config!, groups);
  }

  async changeMembership(_addresses: string[], a: MembershipAction): Promise<void> {
    this.calls.push(`${a.kind} ${a.replicaId}`);
    if (this.hang?.(a)) return new Promise(() => undefined);
    this.config = a.kind === 'add-member' ? withReplica(this.config!, a.group, { id: a.replicaId, address: a.address }) : withoutReplica(this.config!, a.group, a.replicaId);
  }
}
