// A model of a Kubernetes namespace running a sharded-kvs cluster, for the reconcile core's tests:
// StatefulSets (OnDelete), pods that start, become ready and crash, volume claims, Raft groups that
// elect a leader among their running members, and the placement group's configuration, changed with
// the real functions of src/placement/config.ts. It executes the core's actions and asserts the
// safety rules at the moment each is carried out (independently of the core's own reasoning).
import assert from 'node:assert/strict';
import { completeMoves, initialConfig, reshard, withReplica, withoutReplica, type ClusterConfig } from '../../src/placement/config.ts';
import type { Xxh64 } from '../../src/partition/index.ts';
import { groupName, isDrained, majority, PLACEMENT_GROUP, replicaIdOf, type Action, type MembershipAction, type ObservedGroup, type ReconcileInput, type ReplicaState } from '../../src/operator/reconcile.ts';
import type { KVStoreSpec } from '../../src/operator/spec.ts';
import type { Prng } from '../partition/prng.ts';

interface Pod {
  revision: string;
  image: string;
  running: boolean;
  terminating: boolean;
}

interface Group {
  replicas: number;
  revision: string;
  image: string;
  joinFrom: number;
  /** The StatefulSet's persistentVolumeClaimRetentionPolicy.whenDeleted. */
  retention: string;
  pods: Map<number, Pod>;
  volumes: Set<number>;
  /** Raft voters (replica ids), learners included once added. */
  raft: Set<number>;
  leader: number;
}

export const STORE = 'kv';

export class World {
  readonly groups = new Map<number, Group>();
  config: ClusterConfig | null = null;
  /** The adapter's record of membership changes sent and not yet confirmed, by group. */
  readonly inFlight = new Map<number, MembershipAction>();
  /** Ids of deleted groups whose volumes were kept. */
  readonly retained = new Set<number>();
  /** Pods restarted by the operator that belonged to each group (for the one-group-at-a-time rule). */
  readonly log: string[] = [];

  constructor(
    private readonly h64: Xxh64,
    private readonly partitions = 64,
  ) {}

  input(spec: KVStoreSpec): ReconcileInput {
    const groups: ObservedGroup[] = [...this.groups].map(([id, g]) => ({
      id,
      replicas: g.replicas,
      revision: g.revision,
      joinFrom: g.joinFrom,
      retention: g.retention,
      volumes: [...g.volumes].sort((a, b) => a - b),
      pods: [...g.pods]
        .sort((a, b) => a[0] - b[0])
        .map(([o, p]) => ({ ordinal: o, name: `${groupName(STORE, id)}-${o}`, address: addr(id, o), running: p.running, ready: this.ready(id, o), revision: p.revision, image: p.image, terminating: p.terminating })),
    }));
    const replicas: Record<number, ReplicaState> = {};
    for (const [id, g] of this.groups) {
      for (const o of g.pods.keys()) {
        if (this.ready(id, o)) replicas[replicaIdOf(id, o)] = { role: g.leader === replicaIdOf(id, o) ? 'leader' : 'follower', leaderId: g.leader };
      }
    }
    const placementUp = this.groups.get(PLACEMENT_GROUP)?.leader;
    return { store: STORE, spec, groups, config: placementUp ? structuredClone(this.config) : undefined, replicas, retainedGroups: [...this.retained], inFlight: [...this.inFlight.values()] };
  }

  ready(id: number, o: number): boolean {
    const g = this.groups.get(id)!;
    const p = g.pods.get(o);
    return !!p && p.running && !p.terminating && g.leader !== 0 && g.raft.has(replicaIdOf(id, o));
  }

  /** Carries out one action, asserting the safety rules on the state it acts on. */
  act(a: Action, rng: Prng, crashMidway: boolean): void {
    this.log.push(JSON.stringify(a));
    switch (a.kind) {
      case 'apply-group': {
        let g = this.groups.get(a.group);
        assert.ok(!this.retained.has(a.group), `new group ${a.group} would mount the retained volumes of a removed group`);
        if (!g) {
          g = { replicas: 0, revision: a.revision, image: a.image, joinFrom: a.joinFrom, retention: a.retention, pods: new Map(), volumes: new Set(), raft: new Set(range(a.joinFrom).map((o) => replicaIdOf(a.group, o))), leader: 0 };
          this.groups.set(a.group, g);
        }
        Object.assign(g, { replicas: a.replicas, revision: a.revision, image: a.image, joinFrom: a.joinFrom, retention: a.retention });
        return;
      }
      case 'init-cluster':
        assert.equal(this.config, null, 'init-cluster with a configuration present');
        this.config = initialConfig(this.h64, a.groups, this.partitions);
        return;
      case 'start-reshard':
        assert.ok(this.config && this.config.moves.length === 0, 'reshard while one is running');
        for (const gi of a.groups) assert.ok(this.groups.get(gi.id)?.leader, `reshard into group ${gi.id} which has no leader`);
        this.config = reshard(this.h64, this.config, a.groups);
        return;
      case 'add-member': {
        const g = this.groups.get(a.group)!;
        const o = a.replicaId - replicaIdOf(a.group, 0);
        // A new change only for a running pod; a resumed one may find it crashed since: it fails
        // (the learner cannot catch up) and stays in flight.
        if (!g.pods.get(o)?.running) {
          assert.ok(this.inFlight.get(a.group) === a && this.log.slice(0, -1).includes(JSON.stringify(a)), `add-member ${a.replicaId}: its pod is not running`);
          return;
        }
        g.raft.add(a.replicaId); // learner, then voter
        if (crashMidway) return; // the operator died before the placement configuration listed it
        this.config = withReplica(this.config!, a.group, { id: a.replicaId, address: a.address });
        this.inFlight.delete(a.group);
        return;
      }
      case 'remove-member': {
        const g = this.groups.get(a.group)!;
        const rest = [...g.raft].filter((r) => r !== a.replicaId);
        const ready = rest.filter((r) => this.ready(a.group, r - replicaIdOf(a.group, 0))).length;
        assert.ok(ready >= majority(rest.length), `remove ${a.replicaId}: ${ready} of ${rest.length} remaining ready, below quorum`);
        this.config = withoutReplica(this.config!, a.group, a.replicaId);
        if (crashMidway) return;
        g.raft.delete(a.replicaId);
        if (g.leader === a.replicaId) g.leader = 0;
        this.inFlight.delete(a.group);
        return;
      }
      case 'delete-pod': {
        const g = this.groups.get(a.group)!;
        const o = Number(a.pod.split('-').pop());
        const members = [...g.raft];
        const id = replicaIdOf(a.group, o);
        if (this.ready(a.group, o) && members.length > 1) {
          const others = members.filter((r) => r !== id && this.ready(a.group, r - replicaIdOf(a.group, 0))).length;
          assert.ok(others >= majority(members.length), `restart ${a.pod}: only ${others} other members ready of ${members.length}`);
        }
        for (const [gid, other] of this.groups) {
          if (gid !== a.group) assert.ok(![...other.pods.values()].some((p) => p.terminating), `restart in group ${a.group} while group ${gid} is restarting a pod`);
        }
        g.pods.get(o)!.terminating = true;
        // SIGTERM on a leader hands leadership to a ready member first.
        if (g.leader === id) g.leader = members.find((r) => r !== id && this.ready(a.group, r - replicaIdOf(a.group, 0))) ?? 0;
        return;
      }
      case 'delete-group': {
        assert.ok(this.config && isDrained(this.config, a.group), `delete-group ${a.group} which still owns partitions`);
        this.groups.delete(a.group);
        if (!a.deleteVolumes) this.retained.add(a.group);
        return;
      }
    }
    void rng;
  }

  /** Time passes: the StatefulSet controller, kubelets, Raft elections, hand-offs, faults. */
  tick(rng: Prng, faults: boolean): void {
    for (const [id, g] of this.groups) {
      for (const [o, p] of [...g.pods]) {
        if (p.terminating && rng.below(2) === 0) {
          g.pods.delete(o);
        } else if (o >= g.replicas && !p.terminating) {
          g.pods.delete(o); // scale down (the operator removed the member first)
          if (g.raft.has(replicaIdOf(id, o))) assert.fail(`StatefulSet of group ${id} scaled below member ${replicaIdOf(id, o)}`);
        } else if (!p.running && rng.below(2) === 0) p.running = true;
        else if (faults && p.running && rng.below(40) === 0) p.running = false;
      }
      for (const v of [...g.volumes]) if (v >= g.replicas && !g.pods.has(v) && rng.below(2) === 0) g.volumes.delete(v);
      for (let o = 0; o < g.replicas; o++) {
        if (!g.pods.has(o) && rng.below(2) === 0) {
          g.pods.set(o, { revision: g.revision, image: g.image, running: false, terminating: false });
          g.volumes.add(o);
        }
      }
      const members = [...g.raft];
      const running = members.filter((r) => g.pods.get(r - replicaIdOf(id, 0))?.running && !g.pods.get(r - replicaIdOf(id, 0))?.terminating);
      if (g.leader !== 0 && !running.includes(g.leader)) g.leader = 0;
      if (g.leader === 0 && members.length > 0 && running.length >= majority(members.length)) g.leader = running[rng.below(running.length)]!;
    }
    const c = this.config;
    if (c && c.moves.length > 0) {
      const done = c.moves.filter((m) => this.groups.get(m.from)?.leader && this.groups.get(m.to)?.leader && rng.below(3) === 0).map((m) => m.partition);
      this.config = completeMoves(c, done);
    }
  }

  /** The store is as `spec` asks. */
  converged(spec: KVStoreSpec, revision: string): boolean {
    const c = this.config;
    if (!c || c.moves.length > 0 || c.groups.length !== spec.shards) return false;
    for (const [id, g] of this.groups) {
      const want = id === PLACEMENT_GROUP ? spec.placementReplicas : spec.replicas;
      if (id !== PLACEMENT_GROUP && !c.groups.some((x) => x.id === id)) return false;
      if (g.retention !== spec.storage.retention) return false;
      if (g.replicas !== want || g.raft.size !== want || g.pods.size !== want || g.leader === 0) return false;
      for (const [o, p] of g.pods) if (p.revision !== revision || !this.ready(id, o)) return false;
      if (id !== PLACEMENT_GROUP && c.groups.find((x) => x.id === id)!.replicas.length !== want) return false;
    }
    return this.groups.size === spec.shards + 1;
  }
}

export function addr(group: number, ordinal: number): string {
  return `${groupName(STORE, group)}-${ordinal}.${groupName(STORE, group)}:7001`;
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
