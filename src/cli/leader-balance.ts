// Which leadership to move so that the processes of a `kvs up --processes N` cluster lead about
// the same number of groups: a process leading several busy groups does their proposals, fsyncs
// and fan-out on one event loop while the others idle. Pure: the supervisor feeds it who leads
// where and carries out the transfer it names (over the host's IPC channel).
import type { StatusInfo } from '../wire/index.ts';

export interface ReplicaPlace {
  id: number;
  group: number;
  /** The process (host index) it runs in. */
  host: number;
  leader: boolean;
  /** A placement group replica: its group holds the configuration and carries no client writes. */
  placement?: boolean;
}

/**
 * One transfer that narrows the spread of leaders per host (most − least ≥ 2), or undefined when
 * it is balanced or cannot be improved: a group led on a most-loaded host hands leadership to its
 * replica on a least-loaded host. Lowest group id first, so repeated calls are deterministic.
 * The groups that carry writes are spread first, counted without the placement group: counted
 * with it, a process leading the placement group and no shard group looked as busy as one leading
 * a shard group, so two shard leaders could share a process while another led none. Then only
 * the placement leadership moves, so that step never unbalances the shard groups again.
 */
export function nextTransfer(replicas: ReplicaPlace[], hosts: number): { from: number; to: number } | undefined {
  const writing = replicas.filter((r) => !r.placement);
  return transferWithin(writing, writing, hosts) ?? transferWithin(replicas, replicas.filter((r) => r.placement), hosts);
}

/** A transfer among `movable`'s groups that narrows the spread of `counted`'s leaders per host. */
function transferWithin(counted: ReplicaPlace[], movable: ReplicaPlace[], hosts: number): { from: number; to: number } | undefined {
  const leads = Array.from({ length: hosts }, () => 0);
  for (const r of counted) if (r.leader) leads[r.host]!++;
  const most = Math.max(...leads);
  const least = Math.min(...leads);
  if (most - least < 2) return undefined;
  const groups = [...new Set(movable.map((r) => r.group))].sort((a, b) => a - b);
  for (const g of groups) {
    const members = movable.filter((r) => r.group === g);
    const leader = members.find((r) => r.leader);
    if (!leader || leads[leader.host] !== most) continue;
    const target = members.find((r) => !r.leader && leads[r.host] === least);
    if (target) return { from: leader.id, to: target.id };
  }
  return undefined;
}

/**
 * Who leads where, among the replicas that answered. Per group only the newest term's leader
 * counts (as in notServing): an old leader may still say so for a moment after an election, and
 * counted too it made a process look busier than it is (a needless move, or a false "settled").
 */
export function placesOf(rows: { id: number; group: number; placement?: boolean; status: StatusInfo | undefined }[], hosts: { hostOf(id: number, group: number): number }): ReplicaPlace[] {
  const newest = new Map<number, number>();
  for (const x of rows) if (x.status?.role === 'leader') newest.set(x.group, Math.max(newest.get(x.group) ?? -1, x.status.term));
  return rows
    .filter((x) => x.status)
    .map((x) => ({ id: x.id, group: x.group, host: hosts.hostOf(x.id, x.group), leader: x.status!.role === 'leader' && x.status!.term === newest.get(x.group), placement: x.placement === true }));
}

export interface BalancerOptions {
  hosts: number;
  /** Who leads where now (replicas that do not answer left out). */
  places(): Promise<ReplicaPlace[]>;
  leadAway(from: number, to: number): void;
  /** Pause between rounds (a transfer takes an election's worth of ticks to show). */
  everyMs: number;
  /** While nothing changes, the pause doubles up to this: an idle cluster is not polled 6 times a second. */
  maxEveryMs?: number;
  stopped(): boolean;
  /** How to wait (tests record the pauses instead). */
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Moves one leadership per round while the spread is 2 or more; until stopped. Rounds that find the
 * same leaders and nothing to move back off (up to maxEveryMs); any change of leader starts over.
 */
export async function balanceLeaders(o: BalancerOptions): Promise<void> {
  let pause = o.everyMs;
  let seen = '';
  while (!o.stopped()) {
    await (o.sleep ?? ((ms) => new Promise<void>((r) => setTimeout(r, ms).unref())))(pause);
    if (o.stopped()) return;
    const places = await o.places().catch(() => []);
    const leaders = places.filter((p) => p.leader).map((p) => p.id).sort((a, b) => a - b).join(',');
    const move = nextTransfer(places, o.hosts);
    if (move) o.leadAway(move.from, move.to);
    pause = move || leaders !== seen ? o.everyMs : Math.min(2 * pause, o.maxEveryMs ?? o.everyMs);
    seen = leaders;
  }
}

/** What `settleLeaders` asked for last: which leadership, and when. */
export interface AskedMove {
  from: number;
  group: number;
  at: number;
}

export interface SettleStep {
  /** The transfer to ask for now, if any. */
  move?: { from: number; to: number };
  /** Why "ready" must wait (a move asked for now or still showing); undefined: settled, or out of time. */
  waiting?: string;
  /** The move to remember for the next step. */
  asked?: AskedMove;
}

/**
 * One step of spreading the leaders before `kvs up` says "ready" (pure). A leadership moved after
 * "ready" is a hand-over that the first client or `kvs status` can run into (a group whose leader
 * only one replica knows for a moment), so the spread is settled first: one move at a time, each
 * given `showMs` to take effect before the next is asked for; no new move `limitMs` after the first
 * step (a move that keeps failing must not hold "ready" up; `balanceLeaders` carries on after it).
 */
export function settleLeaders(
  places: ReplicaPlace[],
  hosts: number,
  s: { since: number; now: number; asked: AskedMove | undefined; limitMs: number; showMs: number },
): SettleStep {
  const move = nextTransfer(places, hosts);
  if (!move) return {};
  const { asked } = s;
  if (asked && s.now - asked.at < s.showMs && places.some((p) => p.id === asked.from && p.leader)) {
    return { waiting: `leadership of group ${asked.group} moving to spread leaders over the processes`, asked };
  }
  // Out of time: no new move. Checked after the one asked for, which still gets its showMs (so
  // limitMs + showMs at most): "ready" said while it was under way met the hand-over after all.
  if (s.now - s.since >= s.limitMs) return {};
  const group = places.find((p) => p.id === move.from)!.group;
  return { move, waiting: `leadership of group ${group} moving to spread leaders over the processes`, asked: { from: move.from, group, at: s.now } };
}
