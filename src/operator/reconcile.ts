// The operator's brain, pure: (spec, the Kubernetes objects observed, the store's own state) → the
// next actions. The adapter (controller.ts) carries them out, observes again and calls this again;
// nothing is remembered here except what the store and the cluster show, plus the membership
// change in flight (recorded in the resource's status before it is sent), so a restarted operator
// resumes where the last one stopped.
//
// Safety rules, each checked by test/operator/reconcile*.test.ts:
//  - a group that owns partitions (or has hand-offs from or to it) is never deleted;
//  - no group is taken below quorum: a replica is removed or restarted only if the group's other
//    ready members still form a majority;
//  - one change at a time per group, and image rolls one group at a time, followers first, the
//    leader last (its server hands leadership over on SIGTERM before it stops);
//  - the same inputs give the same actions (idempotent).
import type { ClusterConfig, GroupInfo } from '../placement/config.ts';
import type { KVStoreSpec, Phase, Retention } from './spec.ts';

export const PLACEMENT_GROUP = 0;

export interface ObservedPod {
  ordinal: number;
  name: string;
  /** host:port of its native door. */
  address: string;
  /** Container started (a joining replica is running long before it is ready). */
  running: boolean;
  /** Readiness probe: in the configuration, knows a leader, caught up. */
  ready: boolean;
  /** Template revision the pod was created from. */
  revision: string;
  image: string;
  terminating: boolean;
}

export interface ObservedGroup {
  id: number;
  /** StatefulSet's spec.replicas. */
  replicas: number;
  /** Template revision of the StatefulSet (annotation written by the operator). */
  revision: string;
  joinFrom: number;
  pods: ObservedPod[];
  /** Ordinals that still have a volume claim. */
  volumes: number[];
  /** The StatefulSet's spec.volumeClaimTemplates as it exists: immutable, so re-applied unchanged. */
  claimTemplates?: unknown[];
  /**
   * The StatefulSet's persistentVolumeClaimRetentionPolicy.whenDeleted as it exists (undefined: not
   * shown, e.g. an API server without the field). Not part of the revision (no pod restarts for it),
   * so it is compared on its own: a changed spec.storage.retention re-applies the StatefulSet.
   */
  retention?: string;
}

export interface ReplicaState {
  role: 'leader' | 'follower' | 'candidate' | 'pre-candidate';
  leaderId: number;
}

export type MembershipAction = { kind: 'add-member'; group: number; replicaId: number; address: string } | { kind: 'remove-member'; group: number; replicaId: number };

export interface ReconcileInput {
  store: string;
  spec: KVStoreSpec;
  groups: ObservedGroup[];
  /** The placement group's configuration: undefined while unreadable, null when none exists yet. */
  config: ClusterConfig | null | undefined;
  /** Raft state by replica id, for the replicas that answered. */
  replicas: Record<number, ReplicaState>;
  /** Membership changes (at most one per group) recorded in status and not yet confirmed done. */
  inFlight?: MembershipAction[];
  /** Ids of removed groups whose volumes were retained: never reused, or a new group would mount them. */
  retainedGroups?: number[];
  /**
   * A hash of the settings ConfigMap's data the operator writes (objects.ts `settingsHash`): part of
   * the revision, so settings that change without the spec (a new operator version shipping another
   * kvs.yaml) restart the pods too, which read them only at start.
   */
  settings?: string;
  /**
   * A hash of the group template the operator instantiates and of what its code adds (objects.ts
   * `templateHash`): part of the revision, so a new operator version that renders other objects (a
   * probe, an env var, args) re-applies the StatefulSets and restarts the pods, though the spec is
   * the same.
   */
  template?: string;
}

export type Action =
  | { kind: 'apply-group'; group: number; replicas: number; image: string; revision: string; joinFrom: number; retention: Retention }
  | { kind: 'init-cluster'; groups: GroupInfo[] }
  | { kind: 'start-reshard'; groups: GroupInfo[] }
  | MembershipAction
  | { kind: 'delete-pod'; group: number; pod: string; leader: boolean }
  | { kind: 'delete-group'; group: number; deleteVolumes: boolean };

export interface Plan {
  actions: Action[];
  /** Why the store is not yet as the spec asks, for the status' conditions (empty: converged). */
  waiting: string[];
  phase: Phase;
  /** What is happening now, in words. */
  step: string;
}

/** Replica ids as `kvs up` numbers them: placement 1..R, shard group g: g*100+1.. (ordinal + 1). */
export function replicaIdOf(group: number, ordinal: number): number {
  return group === PLACEMENT_GROUP ? ordinal + 1 : group * 100 + ordinal + 1;
}

export function groupName(store: string, group: number): string {
  return group === PLACEMENT_GROUP ? `${store}-placement` : `${store}-shard-${group}`;
}

/**
 * The revision of a group's pod template: a change of anything that needs a restart (image,
 * resources, doors, tracing, pod overrides, the settings ConfigMap's data, the operator's group
 * template) changes it; the replica count does not. Nor does spec.storage: the volume size and
 * class reach only the claim templates of new groups (an existing StatefulSet's are immutable, and
 * sent back as they are), so restarting pods for them would change nothing; the retention policy is
 * a StatefulSet field outside the pod template, re-applied on its own (`ObservedGroup.retention`).
 */
export function templateRevision(spec: KVStoreSpec, settings?: string, template?: string): string {
  const { image, imagePullPolicy, resources, doors, tracing, podTemplate } = spec;
  return contentHash({ image, imagePullPolicy, resources, doors, tracing, podTemplate, settings, template });
}

/** A short hash of a JSON value, independent of the order of its keys (undefined fields left out). */
export function contentHash(v: unknown): string {
  return fnv1a(stableJson(v));
}

/**
 * What the running store has settled of the fields that cannot change: the placement group's size
 * (its StatefulSet's founder count, the operator's own record) and the partition count of the
 * cluster configuration. Unknown (undefined) before they exist.
 */
export function establishedSpec(groups: ObservedGroup[], config: ClusterConfig | null | undefined): Partial<Pick<KVStoreSpec, 'partitions' | 'placementReplicas'>> {
  const placement = groups.find((g) => g.id === PLACEMENT_GROUP);
  const placementReplicas = placement === undefined ? undefined : placement.joinFrom > 0 ? placement.joinFrom : placement.replicas;
  return { ...(placementReplicas ? { placementReplicas } : {}), ...(config ? { partitions: config.partitions } : {}) };
}

export function plan(input: ReconcileInput): Plan {
  const p = new Planner(input);
  return p.run();
}

class Planner {
  private readonly actions: Action[] = [];
  private readonly waiting: string[] = [];
  private phase: Phase = 'Ready';
  private step = 'nothing to do';
  private readonly revision: string;
  private readonly byId: Map<number, ObservedGroup>;

  constructor(private readonly in_: ReconcileInput) {
    this.revision = templateRevision(in_.spec, in_.settings, in_.template);
    this.byId = new Map(in_.groups.map((g) => [g.id, g]));
  }

  run(): Plan {
    const { spec, config } = this.in_;
    // The placement group comes first: nothing else can be decided without it.
    const placement = this.byId.get(PLACEMENT_GROUP);
    if (!placement) {
      this.apply(PLACEMENT_GROUP, spec.placementReplicas, spec.placementReplicas);
      return this.done('Creating', 'creating the placement group');
    }
    if (config === undefined) {
      this.wait(`the placement group ${groupName(this.in_.store, 0)} does not answer (no quorum or not started)`);
      return this.done(this.isNew() ? 'Creating' : 'Degraded', 'waiting for the placement group');
    }
    if (config === null) return this.create();
    const configured = config.groups.map((g) => g.id);
    const target = this.targetGroups(config);
    this.deleteDrained(config, target);
    // A group listed in the configuration whose objects are gone (deleted by hand) is recreated.
    for (const id of new Set([...configured, ...target])) {
      if (!this.byId.has(id)) this.apply(id, spec.replicas, spec.replicas);
    }
    // A changed spec.storage.retention reaches every StatefulSet at once, whatever else is under
    // way (deleting the KVStore applies it to the volumes). Only groups without a template change
    // pending: re-applied as they are (replicas, founders, revision), nothing restarts; the others
    // get it with their new template (roll).
    const busy = new Set([...this.actions, ...(this.in_.inFlight ?? [])].map((a) => ('group' in a ? a.group : -1)));
    for (const g of this.in_.groups) {
      if (this.retentionStale(g) && g.revision === this.revision && !busy.has(g.id)) {
        this.apply(g.id, g.replicas, g.joinFrom);
        this.step = `applying volume retention ${spec.storage.retention} to ${groupName(this.in_.store, g.id)}`;
      }
    }
    const inFlight = this.in_.inFlight ?? [];
    if (inFlight.length > 0) {
      for (const a of inFlight) {
        const g = this.byId.get(a.group);
        const listed = config.groups.find((x) => x.id === a.group)?.replicas.map((r) => r.id) ?? [];
        if (a.kind === 'remove-member' && g && !this.canRemove(g, a.replicaId, listed)) continue;
        this.actions.push(a);
      }
      return this.done('Scaling', `${inFlight.map(describe).join('; ')} (resumed)`);
    }
    if (config.moves.length > 0) {
      this.wait(`${config.moves.length} partitions are moving between shard groups`);
      return this.done('Resharding', `moving ${config.moves.length} partitions (epoch ${config.epoch})`);
    }
    if (!sameSet(configured, target)) return this.reshard(target);
    for (const g of [placement, ...config.groups.map((x) => this.byId.get(x.id)).filter((x): x is ObservedGroup => !!x)]) {
      if (g.id !== PLACEMENT_GROUP) this.membership(g, config.groups.find((x) => x.id === g.id)!);
    }
    if (this.actions.length > 0 || this.waiting.length > 0) return this.done('Scaling', this.actions.length > 0 ? this.step : this.waiting[0]!);
    const members = (g: ObservedGroup): number[] => (g.id === PLACEMENT_GROUP ? range(spec.placementReplicas).map((o) => replicaIdOf(0, o)) : config.groups.find((x) => x.id === g.id)!.replicas.map((r) => r.id));
    const groups = [placement, ...config.groups.map((x) => this.byId.get(x.id)!)];
    // A roll restarts one pod in the whole store at a time, and waits for it to be back and caught up.
    const rolling = groups.some((g) => g.revision !== this.revision || g.pods.some((p) => p.revision !== this.revision));
    const back = groups.flatMap((g) => g.pods.filter((p) => p.terminating || (!p.ready && p.revision === this.revision)));
    if (rolling && back.length > 0) {
      this.wait(back[0]!.terminating ? `pod ${back[0]!.name} is restarting` : `pod ${back[0]!.name} runs the new revision but is not ready (caught up) yet`);
      return this.done('Upgrading', `upgrading: waiting for ${back[0]!.name}`);
    }
    for (const g of groups) {
      if (this.roll(g, members(g))) return this.done('Upgrading', this.step);
    }
    return this.done(this.actions.length > 0 ? 'Scaling' : 'Ready', this.actions.length > 0 ? this.step : 'nothing to do');
  }

  private done(phase: Phase, step: string): Plan {
    this.phase = this.waiting.length > 0 && phase === 'Ready' ? 'Degraded' : phase;
    this.step = step;
    return { actions: this.actions, waiting: this.waiting, phase: this.phase, step: this.step };
  }

  private wait(why: string): void {
    this.waiting.push(why);
  }

  private isNew(): boolean {
    return this.in_.groups.length <= 1;
  }

  /**
   * No configuration yet: create groups 1..shards, and write the first configuration as soon as
   * their pods exist (their addresses are known). A shard replica starts serving only once a
   * configuration exists, so the groups elect their leaders after this, not before.
   */
  private create(): Plan {
    const ids = range(this.in_.spec.shards).map((i) => i + 1);
    let allThere = true;
    for (const id of ids) {
      const g = this.byId.get(id);
      if (!g) {
        this.apply(id, this.in_.spec.replicas, this.in_.spec.replicas);
        allThere = false;
      } else if (!this.groupInfo(g)) {
        this.wait(`the pods of shard group ${id} do not exist yet`);
        allThere = false;
      }
    }
    if (allThere) this.actions.push({ kind: 'init-cluster', groups: ids.map((id) => this.groupInfo(this.byId.get(id)!)!) });
    return this.done('Creating', allThere ? 'writing the first cluster configuration' : `starting ${ids.length} shard groups`);
  }

  /**
   * The shard groups the spec asks for: the lowest configured ids first, then groups already
   * started but not configured yet (a scale-up under way), then fresh ids.
   */
  private targetGroups(config: ClusterConfig): number[] {
    // The groups the running reshard removes (recorded since 2026-12-07; before, the sources owning nothing).
    const leaving = new Set(config.leaving ?? config.moves.map((m) => m.from).filter((g) => !config.owner.includes(g)));
    const configured = config.groups.map((g) => g.id).filter((g) => !leaving.has(g));
    // While partitions move, the target is the one the running reshard goes to.
    if (config.moves.length > 0) return configured;
    // joinFrom > 0: bootstrapped and never configured (a configured group is switched to 0, so a
    // drained group is never mistaken for a new one).
    const started = this.in_.groups.filter((g) => g.id !== PLACEMENT_GROUP && g.joinFrom > 0 && !config.groups.some((x) => x.id === g.id)).map((g) => g.id);
    const out = [...configured, ...started].sort((a, b) => a - b).slice(0, this.in_.spec.shards);
    // Fresh ids are above every id in use or remembered (a drained group may still be running).
    const used = [...config.groups.map((g) => g.id), ...this.in_.groups.map((g) => g.id), ...(this.in_.retainedGroups ?? [])];
    for (let id = Math.max(0, ...used) + 1; out.length < this.in_.spec.shards; id++) out.push(id);
    return out.sort((a, b) => a - b);
  }

  /** Every group that gives or takes partitions must run with a leader before a reshard starts. */
  private reshard(target: number[]): Plan {
    const config = this.in_.config!;
    const fresh = target.filter((id) => !config.groups.some((g) => g.id === id));
    const involved = [...new Set([...config.groups.map((g) => g.id), ...target])].sort((a, b) => a - b);
    const notLed = involved.filter((id) => {
      const g = this.byId.get(id);
      return !g || !this.leaderOf(g) || (fresh.includes(id) && !this.groupInfo(g));
    });
    for (const id of notLed) if (this.byId.has(id)) this.wait(`shard group ${id} has no leader${fresh.includes(id) ? ' yet' : ''}`);
    if (notLed.length > 0) return this.done('Resharding', fresh.length > 0 ? `starting shard groups ${fresh.join(', ')}` : `waiting for shard groups ${notLed.join(', ')} to elect a leader`);
    const groups = target.map((id) => config.groups.find((g) => g.id === id) ?? this.groupInfo(this.byId.get(id)!)!);
    this.actions.push({ kind: 'start-reshard', groups });
    return this.done('Resharding', `resharding ${config.groups.length} → ${target.length} shard groups`);
  }

  /** Groups out of the configuration and the target, with nothing to hand off: deleted. */
  private deleteDrained(config: ClusterConfig, target: number[]): void {
    for (const g of this.in_.groups) {
      if (g.id === PLACEMENT_GROUP || target.includes(g.id) || !isDrained(config, g.id)) continue;
      this.actions.push({ kind: 'delete-group', group: g.id, deleteVolumes: this.in_.spec.storage.retention === 'Delete' });
    }
  }

  /** One membership step of shard group `g` towards spec.replicas members. */
  private membership(g: ObservedGroup, info: GroupInfo): void {
    const want = this.in_.spec.replicas;
    const members = info.replicas.map((r) => r.id);
    const ordinalOf = (id: number): number => id - replicaIdOf(g.id, 0);
    const name = groupName(this.in_.store, g.id);
    // One change at a time per group: its StatefulSet is being re-applied in this pass.
    if (this.actions.some((a) => 'group' in a && a.group === g.id)) return;
    if (!this.leaderOf(g)) {
      this.wait(`shard group ${g.id} has no leader`);
      return;
    }
    if (members.length < want) {
      const k = range(want).find((o) => !members.includes(replicaIdOf(g.id, o)))!;
      const pod = g.pods.find((x) => x.ordinal === k);
      if (g.replicas <= k) {
        if (g.volumes.includes(k)) this.wait(`the volume of removed replica ${name}-${k} is still being deleted`);
        else this.apply(g.id, k + 1, 0);
      } else if (!pod || !pod.running || pod.terminating) {
        this.wait(`pod ${name}-${k} is not running yet`);
      } else {
        this.membershipAction({ kind: 'add-member', group: g.id, replicaId: replicaIdOf(g.id, k), address: pod.address });
      }
      return;
    }
    if (members.length > want) {
      const victim = Math.max(...members);
      if (this.canRemove(g, victim, members)) this.membershipAction({ kind: 'remove-member', group: g.id, replicaId: victim });
      return;
    }
    // Members are as asked: the StatefulSet keeps exactly the members' pods.
    const size = Math.max(...members.map(ordinalOf)) + 1;
    if (g.replicas !== size) this.apply(g.id, size, 0);
  }

  /** Removing `victim` leaves the other `members` with a ready majority (else: wait, saying why). */
  private canRemove(g: ObservedGroup, victim: number, members: number[]): boolean {
    const rest = members.filter((m) => m !== victim);
    if (this.readyCount(g, rest) >= majority(rest.length)) return true;
    this.wait(`removing replica ${victim} of shard group ${g.id} now would leave it without a ready quorum`);
    return false;
  }

  private membershipAction(a: MembershipAction): void {
    this.actions.push(a);
    this.step = describe(a);
  }

  /** Restarts one stale pod of `g` if that is safe now; true if the group is being rolled. */
  private roll(g: ObservedGroup, members: number[]): boolean {
    // Configured groups are bootstrapped: any replica started from now on (empty volume) joins.
    const joinFrom = g.id === PLACEMENT_GROUP ? this.in_.spec.placementReplicas : 0;
    if (g.revision !== this.revision || g.joinFrom !== joinFrom) {
      this.apply(g.id, g.replicas, joinFrom);
      return true;
    }
    const stale = g.pods.filter((p) => p.revision !== this.revision);
    if (stale.length === 0) return false;
    const name = groupName(this.in_.store, g.id);
    const leader = this.leaderOf(g);
    // A pod already down is restarted first; then followers; the leader last.
    const order = [...stale].sort((a, b) => Number(a.ready) - Number(b.ready) || Number(this.isLeader(g, a, leader)) - Number(this.isLeader(g, b, leader)) || a.ordinal - b.ordinal);
    const pod = order[0]!;
    const others = members.filter((m) => m !== replicaIdOf(g.id, pod.ordinal));
    if (pod.ready && members.length > 1 && this.readyCount(g, others) < majority(members.length)) {
      this.wait(`restarting ${pod.name} now would leave ${name} without a ready quorum`);
    } else {
      this.actions.push({ kind: 'delete-pod', group: g.id, pod: pod.name, leader: this.isLeader(g, pod, leader) });
    }
    this.step = `upgrading ${name}: ${stale.length} of ${g.pods.length} pods to restart`;
    return true;
  }

  private isLeader(g: ObservedGroup, p: ObservedPod, leader: number | undefined): boolean {
    return leader === replicaIdOf(g.id, p.ordinal);
  }

  /** The leader most replicas of `g` agree on, if its pod is ready. */
  private leaderOf(g: ObservedGroup): number | undefined {
    const votes = new Map<number, number>();
    for (const p of g.pods) {
      const s = this.in_.replicas[replicaIdOf(g.id, p.ordinal)];
      if (p.ready && s && s.leaderId > 0) votes.set(s.leaderId, (votes.get(s.leaderId) ?? 0) + 1);
    }
    const [best] = [...votes].sort((a, b) => b[1] - a[1] || a[0] - b[0]);
    if (!best) return undefined;
    const pod = g.pods.find((p) => replicaIdOf(g.id, p.ordinal) === best[0]);
    return pod?.ready ? best[0] : undefined;
  }

  private readyCount(g: ObservedGroup, ids: number[]): number {
    return g.pods.filter((p) => p.ready && !p.terminating && ids.includes(replicaIdOf(g.id, p.ordinal))).length;
  }

  /** A new group as the configuration lists it: its bootstrap members, once all their pods exist. */
  private groupInfo(g: ObservedGroup): GroupInfo | undefined {
    const pods = range(g.joinFrom).map((o) => g.pods.find((p) => p.ordinal === o));
    if (pods.length === 0 || pods.some((p) => !p)) return undefined;
    return { id: g.id, replicas: pods.map((p) => ({ id: replicaIdOf(g.id, p!.ordinal), address: p!.address })) };
  }

  /**
   * The StatefulSet's PVC retention differs from spec.storage.retention: it decides what deleting
   * the KVStore (or the group) does to the volumes, so it must follow the spec although no pod
   * restarts for it. Unknown (the field not shown) counts as in step: re-applying could not set it.
   */
  private retentionStale(g: ObservedGroup): boolean {
    return g.retention !== undefined && g.retention !== this.in_.spec.storage.retention;
  }

  /** Create or update group `id`'s objects, unless they already are as asked. */
  private apply(id: number, replicas: number, joinFrom: number): void {
    const g = this.byId.get(id);
    if (g && g.replicas === replicas && g.revision === this.revision && g.joinFrom === joinFrom && !this.retentionStale(g)) return;
    // One apply per group and pass (the last asked wins).
    const i = this.actions.findIndex((a) => a.kind === 'apply-group' && a.group === id);
    if (i >= 0) this.actions.splice(i, 1);
    this.actions.push({ kind: 'apply-group', group: id, replicas, image: this.in_.spec.image, revision: this.revision, joinFrom, retention: this.in_.spec.storage.retention });
  }
}

/** True when group `id` owns no partition and no hand-off involves it. */
export function isDrained(config: ClusterConfig, id: number): boolean {
  return !config.groups.some((g) => g.id === id) && !config.owner.includes(id) && !config.moves.some((m) => m.from === id || m.to === id);
}

export function majority(n: number): number {
  return Math.floor(n / 2) + 1;
}

function describe(a: MembershipAction): string {
  return a.kind === 'add-member' ? `adding replica ${a.replicaId} to shard group ${a.group} (learner, then voter)` : `removing replica ${a.replicaId} from shard group ${a.group}`;
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

function sameSet(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}

function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

function fnv1a(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}
