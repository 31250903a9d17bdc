// Carries out replica-spread.ts's plan for one shard group of a `kvs up` cluster, one membership
// change at a time, each through the group's leader (admin-client.ts), re-planned from what kvs up
// runs and what the cluster configuration lists after every step. Safe to kill at any point and
// run again:
// - the group's replica count before the rebalance (the target) is written to DATA/spread-g<G>.json
//   before the first step, so a rerun after the add and before the removal still removes one;
// - a replica that kvs up runs but the configuration does not list is an add or a removal cut
//   short (an add lists a replica before promoting it; a removal unlists it first): it never counts
//   in a quorum, so it is removed and stopped, and the plan adds a fresh one if still needed;
// - a replica is removed only while the group has more than the target, and only after every other
//   listed replica was confirmed a caught-up voter (an idempotent add: it also finishes a promotion
//   cut short), so the group keeps at least its original voters, all of them live.
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { changeGroupMembership } from '../membership/admin-client.ts';
import { groupOf } from '../placement/config.ts';
import { awaitConfig } from '../resharding/admin.ts';
import { callControl, hostLayout } from './control.ts';
import { nextSpreadStep } from './replica-spread.ts';

export interface SpreadOptions {
  /** The kvs up data directory (its control socket, cluster.json and the intent file). */
  dataDir: string;
  /** The placement group's native addresses. */
  placement: string[];
  group: number;
  timeoutMs: number;
  /**
   * Called right after a removal the user asked for: a target left by an interrupted rebalance is
   * lowered to the count now, so that the rebalance never undoes that removal.
   */
  afterRemoval?: boolean;
  say: (line: string) => void;
  /** What it waits for while a group cannot answer (the CLI: stderr). */
  waiting?: (line: string) => void;
}

export function intentPath(dataDir: string, group: number): string {
  return join(dataDir, `spread-g${group}.json`);
}

function readTarget(path: string): number | undefined {
  if (!existsSync(path)) return undefined;
  const t = (JSON.parse(readFileSync(path, 'utf8')) as { target?: unknown }).target;
  if (typeof t !== 'number' || !Number.isInteger(t) || t < 1) throw new Error(`${path}: no valid "target" (remove the file to plan afresh)`);
  return t;
}

function writeTarget(path: string, target: number): void {
  writeFileSync(`${path}.tmp`, `${JSON.stringify({ target })}\n`);
  renameSync(`${path}.tmp`, path);
}

/** Spreads `group` over kvs up's host processes; the number of membership changes it made. */
export async function spreadGroup(o: SpreadOptions): Promise<number> {
  const deadline = Date.now() + o.timeoutMs;
  const left = (): number => {
    const ms = deadline - Date.now();
    if (ms <= 0) throw new Error(`group ${o.group} is not spread yet after ${o.timeoutMs} ms; run "kvs replica balance --group ${o.group}" again`);
    return ms;
  };
  const intent = intentPath(o.dataDir, o.group);
  let target = readTarget(intent);
  let changes = 0;
  for (let round = 0; ; round++) {
    const layout = await hostLayout(o.dataDir);
    const config = await awaitConfig(o.placement, { timeoutMs: left(), flag: '--timeout-ms', ...(o.waiting ? { say: o.waiting } : {}) });
    const listed = config && groupOf(config, o.group);
    if (!listed) throw new Error(`group ${o.group} is not in the cluster configuration`);
    const running = layout.replicas.filter((r) => r.group === o.group);
    for (const r of running.filter((x) => !listed.replicas.some((l) => l.id === x.id))) {
      o.say(`replica ${r.id} runs but group ${o.group} does not list it (an add or a removal cut short): removing it`);
      await changeGroupMembership(o.placement, { op: 'remove', group: o.group, replicaId: r.id, address: '' }, left(), o.waiting);
      await callControl(o.dataDir, { cmd: 'stop-replica', id: r.id, group: o.group });
      changes++;
    }
    const members = running.filter((x) => listed.replicas.some((l) => l.id === x.id));
    if (o.afterRemoval && round === 0 && target !== undefined && members.length < target) writeTarget(intent, (target = members.length));
    const step = nextSpreadStep(members, o.group, layout.hosts, target ?? members.length);
    if (!step) {
      rmSync(intent, { force: true });
      return changes;
    }
    if (target === undefined) writeTarget(intent, (target = members.length));
    if (step.kind === 'add') {
      const added = await callControl(o.dataDir, { cmd: 'add-replica', group: o.group, host: step.host }, left());
      if (!added) throw new Error('kvs up did not say which replica it started');
      o.say(`group ${o.group}: started replica ${added.id} in host process ${step.host}, which has the fewest of the group; adding it`);
      await changeGroupMembership(o.placement, { op: 'add', group: o.group, replicaId: added.id, address: added.address }, left(), o.waiting);
    } else {
      for (const r of members.filter((x) => x.id !== step.id)) {
        await changeGroupMembership(o.placement, { op: 'add', group: o.group, replicaId: r.id, address: r.address }, left(), o.waiting);
      }
      o.say(`group ${o.group}: every other replica is a caught-up voter; removing replica ${step.id}, whose host process holds the most of the group`);
      await changeGroupMembership(o.placement, { op: 'remove', group: o.group, replicaId: step.id, address: '' }, left(), o.waiting);
      await callControl(o.dataDir, { cmd: 'stop-replica', id: step.id, group: o.group });
    }
    changes++;
  }
}
