// The resource's status from a reconcile's inputs and plan, pure: what each group runs, who leads
// it, how many partitions it owns and how many are moving, and the four conditions with a reason a
// person can act on. A step that has not changed for `stuckAfterMs` turns Degraded (StepStuck)
// with the reason it is waiting; it keeps being retried.
import { groupName, PLACEMENT_GROUP, replicaIdOf, type Plan, type ReconcileInput } from './reconcile.ts';
import type { Condition, ConditionType, GroupStatus, KVStoreStatus } from './spec.ts';

export const STUCK_AFTER_MS = 10 * 60_000;

export function computeStatus(input: ReconcileInput, plan: Plan, prev: KVStoreStatus | undefined, generation: number, now: Date, stuckAfterMs = STUCK_AFTER_MS): KVStoreStatus {
  const config = input.config ?? undefined;
  const moving = config?.moves.length ?? 0;
  const groups: GroupStatus[] = [...input.groups]
    .sort((a, b) => a.id - b.id)
    .map((g) => {
      const name = groupName(input.store, g.id);
      const members = g.id === PLACEMENT_GROUP ? g.pods.map((p) => replicaIdOf(0, p.ordinal)) : (config?.groups.find((x) => x.id === g.id)?.replicas.map((r) => r.id) ?? []);
      const leaders = g.pods.map((p) => input.replicas[replicaIdOf(g.id, p.ordinal)]?.role === 'leader' && p).filter((p) => p);
      const images = [...new Set(g.pods.map((p) => p.image))].sort();
      const s: GroupStatus = { name, id: g.id, role: g.id === PLACEMENT_GROUP ? 'placement' : 'shard', replicas: g.replicas, readyReplicas: g.pods.filter((p) => p.ready).length, voters: members };
      if (leaders[0]) s.leader = leaders[0].name;
      if (g.id !== PLACEMENT_GROUP && config) s.partitions = config.owner.filter((o) => o === g.id).length;
      if (images.length > 0) s.image = images.join(',');
      return s;
    });
  const ts = now.toISOString();
  const prevStep = prev?.currentStep;
  const sinceStep = prev?.conditions?.find((c) => c.type === 'Progressing')?.lastTransitionTime;
  const progressing = plan.phase !== 'Ready';
  // The step text changes whenever something advances; the same text past the limit is stuck.
  const stuck = plan.waiting.length > 0 && prevStep === plan.step && sinceStep !== undefined && now.getTime() - Date.parse(sinceStep) >= stuckAfterMs;
  const conds: [ConditionType, boolean, string, string][] = [
    ['Ready', plan.phase === 'Ready', plan.phase === 'Ready' ? 'AllGroupsReady' : plan.phase, plan.phase === 'Ready' ? 'every group runs the spec with a ready quorum' : plan.step],
    ['Progressing', progressing, progressing ? plan.phase : 'Converged', plan.step],
    ['Resharding', moving > 0 || plan.actions.some((a) => a.kind === 'start-reshard'), moving > 0 ? 'PartitionsMoving' : 'NoMoves', moving > 0 ? `${moving} partitions moving (epoch ${config!.epoch})` : 'no partition is moving'],
    [
      'Degraded',
      stuck || plan.phase === 'Degraded',
      stuck ? 'StepStuck' : plan.phase === 'Degraded' ? 'NotAvailable' : 'AsExpected',
      stuck || plan.phase === 'Degraded' ? (plan.waiting[0] ?? plan.step) : 'no step is stuck',
    ],
  ];
  const conditions: Condition[] = conds.map(([type, on, reason, message]) => {
    const status = on ? 'True' : 'False';
    const old = prev?.conditions?.find((c) => c.type === type);
    // Progressing restarts its clock whenever the step changes, so stuck detection measures one step.
    const same = old && old.status === status && (type !== 'Progressing' || prevStep === plan.step);
    return { type, status, reason, message, observedGeneration: generation, lastTransitionTime: same ? old.lastTransitionTime : ts };
  });
  return { observedGeneration: generation, phase: plan.phase, ...(config ? { epoch: config.epoch } : {}), partitionsMoving: moving, currentStep: plan.step, groups, conditions };
}

/**
 * The status of a resource whose spec the operator refuses (spec.ts `SpecError`): nothing is
 * carried out, so the store is not as the resource asks. Ready=False and Degraded=True with reason
 * InvalidSpec and the rule broken; Progressing=False (no step runs until the spec is corrected).
 * The groups and the Resharding condition stay as last observed (a reshard already started goes on
 * in the store by itself).
 */
export function invalidSpecStatus(prev: KVStoreStatus | undefined, generation: number, message: string, now: Date): KVStoreStatus {
  const ts = now.toISOString();
  const set = (type: ConditionType, on: boolean, reason: string, msg: string): Condition => {
    const status = on ? 'True' : 'False';
    const old = prev?.conditions?.find((c) => c.type === type);
    return { type, status, reason, message: msg, observedGeneration: generation, lastTransitionTime: old && old.status === status ? old.lastTransitionTime : ts };
  };
  const resharding = prev?.conditions?.find((c) => c.type === 'Resharding');
  const conditions: Condition[] = [
    set('Ready', false, 'InvalidSpec', `the spec is refused: ${message}`),
    set('Progressing', false, 'InvalidSpec', 'nothing is carried out until the spec is corrected'),
    ...(resharding ? [resharding] : []),
    set('Degraded', true, 'InvalidSpec', message),
  ];
  return { ...(prev ?? {}), observedGeneration: generation, phase: 'Degraded', currentStep: `spec refused: ${message}`, lastError: message, conditions };
}
