// Queues everything a checked Ready asks for. Called synchronously, so lmdb-js puts it all in one
// transaction (writes issued in the same event turn share a batch): one durable commit.
import type { Env, Generation } from './env.ts';
import { encodeRuns } from './log-codec.ts';
import { dropEntries } from './log-edits.ts';
import { RaftKey, encodeGeneration, encodeHardState, encodeIndex, encodeSnapshotMeta, encodeStage } from './records.ts';
import { putRaft } from './raft-table.ts';
import type { Plan } from './ready-plan.ts';
import type { Run } from './ready-record.ts';
import { TABLES } from './snapshot-image.ts';

/** Returns a promise that settles when the batch commits (undefined when there was nothing to write). */
export function writePlan(env: Env, plan: Plan, runs?: readonly Run[]): Promise<unknown> | undefined {
  // Writes of one batch mostly share lmdb-js's commit promise; the set keeps each once, so that
  // every promise is awaited and a failed commit cannot surface as an unhandled rejection.
  const pending = new Set<Promise<unknown>>();
  let last: Promise<unknown> | undefined;
  const track = (p: Promise<unknown>): void => {
    if (p !== last) pending.add((last = p));
  };
  const staging = env.generations[plan.stageGeneration];

  for (const step of plan.stageSteps) {
    if (step.clear) track(clearGeneration(staging));
    for (const r of step.records) track(staging[TABLES[r.table]!].put(Buffer.from(r.key), Buffer.from(r.stored)));
    track(putRaft(env, RaftKey.stage, encodeStage(step.stage)));
  }

  if (plan.install) {
    const meta = plan.install;
    // The staged generation becomes live; the old one is emptied to receive the next image.
    track(putRaft(env, RaftKey.generation, encodeGeneration(plan.stageGeneration)));
    track(putRaft(env, RaftKey.applied, encodeIndex(meta.index)));
    track(putRaft(env, RaftKey.base, encodeSnapshotMeta(meta)));
    track(env.raft.remove(RaftKey.stage));
    track(env.log.clearAsync());
    track(clearGeneration(env.generations[plan.stageGeneration === 0 ? 1 : 0]));
  }

  const { compaction, truncate } = plan;
  if (compaction || truncate) {
    const firstIndex = compaction?.from ?? truncate!.from;
    const lastIndex = truncate?.to ?? compaction!.meta.index;
    dropEntries(env, { ...(compaction ? { through: compaction.meta.index } : {}), ...(truncate ? { from: truncate.from } : {}) }, firstIndex, lastIndex, track);
  }
  if (compaction) track(putRaft(env, RaftKey.base, encodeSnapshotMeta(compaction.meta)));
  if (runs) for (const r of runs) track(env.log.put(r.key, r.run));
  else if (plan.entries.length > 0) encodeRuns(plan.entries, (key, run) => track(env.log.put(key, run)));
  if (plan.hardState) track(putRaft(env, RaftKey.hardState, encodeHardState(plan.hardState)));
  return pending.size > 0 ? Promise.all(pending) : undefined;
}

function clearGeneration(g: Generation): Promise<unknown> {
  return Promise.all([g.kv.clearAsync(), g.sessions.clearAsync(), g.meta.clearAsync()]);
}
