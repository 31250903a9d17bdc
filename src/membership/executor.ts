// Carries out a membership change on the group's leader. Every step is idempotent and re-checked
// against the current state, so a retry (after a timeout or a change of leader) simply continues:
//   add:    refuse a member's id with another address → learn its address → add it as a learner
//           → wait until its log reaches the commit index → check that the voters with it would
//           have an active quorum → list it in the placement configuration → promote it to voter
//   remove: check that the voters without it would have an active quorum → if it is this leader:
//           hand leadership to the most caught-up recently-active voter and answer NOT_LEADER (the
//           admin client retries at the new leader) → drop it from the placement configuration
//           (routers stop sending to it) → remove it from the Raft configuration
// The active-quorum check (strict-reconfig.ts) refuses a change after which the group could not
// commit (e.g. removing a live voter of three while another is down): the group would lose its
// leader and stay without one until the silent voters came back.
// Learner first: a voter that does not have the log yet would count toward the quorum without
// being able to acknowledge anything, so adding one to a 3-voter group would make every commit wait
// for 3 of 4 while it catches up. The placement configuration lists a new replica before it is
// promoted, so every replica of the group knows its address before it counts in a quorum.
import { applyConfChange, type ConfChange } from '../raft/conf.ts';
import type { ConfState } from '../raft/types.ts';
import { DroppedError, NotLeaderError, OutcomeUnknownError, type Replica } from '../replica/replica.ts';
import { groupOf, withReplica, withoutReplica, type ClusterConfig } from '../placement/config.ts';
import type { ConfigWatcher } from '../cluster/config-watcher.ts';
import type { MembershipChange } from '../wire/membership-codec.ts';
import type { Response } from '../wire/index.ts';
import type { AddressBook } from './address-book.ts';
import { activeQuorumProblem, transferTarget } from './strict-reconfig.ts';
import type { Logger } from '../log/logger.ts';

export interface MembershipOptions {
  group: number;
  replica: Replica;
  book: AddressBook;
  /** Absent on a placement-group replica: its replica list is not in any configuration. */
  watcher: ConfigWatcher | undefined;
  tickMs: number;
  electionTicks: number;
  /** How long one request may take, catch-up included (the admin client retries after that). */
  deadlineMs?: number;
  /**
   * How long the executor looks again before refusing a change for a silent voter (default: two
   * election timeouts, at least MIN_SETTLE_MS).
   */
  settleMs?: number;
  log?: Logger;
}

/**
 * The least time a voter is given to answer before a change is refused for it (as etcd's strict
 * reconfiguration check counts a member active if heard within 5 s): two election timeouts (1 s by
 * default) refused a live voter whose process a loaded machine had not run for that long (a CI run
 * with many test clusters at once).
 */
export const MIN_SETTLE_MS = 5000;

/** Not allowed at all (the admin client must not retry). */
class Refused extends Error {}
/** This replica is not (or no longer) the leader. */
class LostLeadership extends Error {}

const POLL_MS = 10;

export class MembershipAdmin {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: MembershipOptions) {}

  /** One change at a time: Raft allows one pending configuration change anyway. */
  execute(c: MembershipChange): Promise<Response> {
    const run = this.queue.then(() => this.run(c));
    this.queue = run.catch(() => {});
    return run;
  }

  private async run(c: MembershipChange): Promise<Response> {
    if (c.group !== this.o.group) return bad(`this replica is in group ${this.o.group}, not ${c.group}`);
    if (!this.o.watcher) return bad('only shard groups can change membership (the placement group keeps its replicas)');
    if (!this.o.replica.isLeader) return this.notLeader();
    const deadline = Date.now() + (this.o.deadlineMs ?? 60_000);
    try {
      const answer = c.op === 'add' ? await this.add(c, deadline) : await this.remove(c.replicaId, deadline);
      this.o.log?.info('membership change', { op: c.op, member: c.replicaId, outcome: answer.kind === 'error' ? answer.error.code : answer.kind });
      return answer;
    } catch (e) {
      if (e instanceof LostLeadership) return this.notLeader();
      if (e instanceof Refused) return bad(e.message);
      return { kind: 'error', error: { code: 'UNAVAILABLE', message: `${c.op} replica ${c.replicaId}: ${(e as Error).message}` } };
    }
  }

  private async add(c: MembershipChange, deadline: number): Promise<Response> {
    const id = c.replicaId;
    this.refuseMove(id, c.address, this.o.watcher!.current);
    this.o.book.set(id, c.address); // the leader can reach it from now on (links follow the conf)
    await this.ensure({ type: 'add-learner', node: id }, (k) => isMember(k, id), deadline);
    await this.waitCaughtUp(id, deadline);
    const conf = this.o.replica.node.conf;
    if (!conf.voters.includes(id)) await this.requireActiveQuorum([...conf.voters, id], `promoting learner ${id} to voter`, deadline);
    await this.waitNoneBlank([...new Set([...conf.voters, id])], `promote ${id}`, deadline);
    await this.o.watcher!.update((cfg) => {
      this.refuseMove(id, c.address, cfg); // the configuration just read, not our possibly older copy
      return withReplica(cfg, this.o.group, { id, address: c.address });
    });
    await this.ensure({ type: 'promote', node: id }, (k) => k.voters.includes(id), deadline);
    return { kind: 'ok' };
  }

  /**
   * An add request for a replica the group already has (a member, or listed in the placement
   * configuration) at another address is refused: it would re-point that replica (the leader's
   * links, the placement configuration, so every router and replica) at an address where it is
   * not, a voter included. The same address is the idempotent check a rebalance makes. Known
   * address: the placement configuration's, else (a learner not listed yet) the one this leader
   * was given (--replicas, or an earlier add request); an id's derived DNS name does not count.
   */
  private refuseMove(id: number, address: string, cfg: ClusterConfig | undefined): void {
    const conf = this.o.replica.node.conf;
    const listed = cfg && groupOf(cfg, this.o.group)?.replicas.find((r) => r.id === id)?.address;
    const known = listed ?? (isMember(conf, id) ? this.o.book.known(id) : undefined);
    if (known === undefined || known === address) return;
    const what = conf.voters.includes(id) ? 'a voter' : conf.learners.includes(id) ? 'a learner' : 'a replica';
    throw new Refused(
      `replica ${id} is already ${what} of group ${this.o.group} at ${known}, not ${address}: adding it again does not move it ` +
        `(to move a replica, add a new one with a new id at the new address, then remove ${id})`,
    );
  }

  private async remove(id: number, deadline: number): Promise<Response> {
    const self = this.o.replica.node.status.id;
    const conf = this.o.replica.node.conf;
    if (isMember(conf, id)) {
      const next = applyConfChange(conf, { type: 'remove', node: id });
      if (typeof next === 'string') throw new Refused(next);
      if (conf.voters.includes(id)) await this.requireActiveQuorum(next.voters, `removing voter ${id}${id === self ? ' (the leader)' : ''}`, deadline);
      await this.waitNoneBlank(next.voters, `remove ${id}`, deadline);
    }
    if (id === self) return this.handOff(deadline);
    await this.o.watcher!.update((cfg) => withoutReplica(cfg, this.o.group, id));
    await this.ensure({ type: 'remove', node: id }, (k) => !isMember(k, id), deadline);
    return { kind: 'ok' };
  }

  /**
   * The leader is the one to remove: make another voter leader; the client retries there. Only a
   * recently-active voter can take over: one that does not answer would never campaign, and the
   * leader refuses writes for as long as a transfer is under way.
   */
  private async handOff(deadline: number): Promise<Response> {
    const self = this.o.replica.node.status.id;
    const target = await this.settled(() => transferTarget(this.leaderStatus(), this.o.replica.node.transferTarget()), deadline);
    if (target === undefined) {
      const st = this.leaderStatus();
      const others = st.conf.voters.filter((v) => v !== self);
      if (others.length === 0) throw new Refused(`replica ${self} is the only voter of group ${this.o.group}`);
      throw new Refused(`replica ${self} is the leader of group ${this.o.group} and no other voter is active to take over (not responding: ${others.join(', ')})`);
    }
    if (!this.o.replica.transferLeadership(target)) throw new Error(`cannot hand leadership to replica ${target} now`);
    const until = Math.min(deadline, Date.now() + this.settleMs());
    while (this.o.replica.isLeader && Date.now() < until) await sleep(POLL_MS);
    if (this.o.replica.isLeader) throw new Error(`leadership transfer to replica ${target} did not complete`);
    this.o.log?.info('handed leadership over before removing myself', { to: target });
    return this.notLeader();
  }

  /**
   * Waits, until the deadline, while one of `voters` (not this leader) says it is blank: the Raft
   * core refuses the change meanwhile (RaftNode.proposeConf). Waited for here, before the placement
   * configuration is touched, so that a change given up at the deadline leaves it as it was (a
   * removal refused only at its last step left the replica unlisted but a voter).
   */
  private async waitNoneBlank(voters: number[], change: string, deadline: number): Promise<void> {
    for (;;) {
      const st = this.leaderStatus();
      const blank = st.progress.find((p) => p.blank === true && p.id !== st.id && voters.includes(p.id));
      if (blank === undefined) return;
      if (Date.now() > deadline) {
        throw new Error(`${change} did not complete in time: voter ${blank.id} is blank (its data directory was replaced and it has not caught up with a leader since): no membership change until it has, or remove ${blank.id} itself`);
      }
      await sleep(POLL_MS);
    }
  }

  /** Refuses unless the configuration with `voters` would have an active quorum (strict-reconfig.ts). */
  private async requireActiveQuorum(voters: number[], change: string, deadline: number): Promise<void> {
    const problem = await this.settled(() => activeQuorumProblem(this.leaderStatus(), voters, `${change} of group ${this.o.group}`), deadline, (p: string | undefined) => p === undefined);
    if (problem !== undefined) throw new Refused(problem);
  }

  /**
   * Looks until `look()` gives an acceptable answer (by default: one at all), for up to one
   * refresh of the activity flags. The leader clears every follower's flag at each CheckQuorum
   * (every election timeout, three when quiet) and sets it again at the follower's next answer
   * (within a heartbeat interval, an election timeout when quiet): a single look just after a
   * clearing would see live followers as silent. Returns the last answer.
   */
  private async settled<T>(look: () => T, deadline: number, ok: (v: T) => boolean = (v) => v !== undefined): Promise<T> {
    const until = Math.min(deadline, Date.now() + this.settleMs());
    for (;;) {
      const v = look();
      if (ok(v) || Date.now() >= until) return v;
      await sleep(POLL_MS);
    }
  }

  private settleMs(): number {
    return this.o.settleMs ?? Math.max(MIN_SETTLE_MS, 2 * this.o.electionTicks * this.o.tickMs);
  }

  private leaderStatus(): Replica['node']['status'] {
    const st = this.o.replica.node.status;
    if (st.role !== 'leader') throw new LostLeadership();
    return st;
  }

  /** Proposes `change` until `done(conf)` holds for a committed configuration. */
  private async ensure(change: ConfChange, done: (c: ConfState) => boolean, deadline: number): Promise<void> {
    const r = this.o.replica;
    let waitingOn = '';
    for (;;) {
      if (!r.isLeader) throw new LostLeadership();
      if (done(r.node.conf)) return this.waitCommitted(deadline);
      if (Date.now() > deadline) throw new Error(`${change.type} ${change.node} did not complete in time${waitingOn}`);
      try {
        await withTimeout(r.proposeConf(change), deadline - Date.now());
      } catch (e) {
        if (e instanceof DroppedError || e instanceof TimeoutError || e instanceof OutcomeUnknownError) continue; // look again
        if (!(e instanceof NotLeaderError)) throw e;
        if (e.message === 'not-leader') throw new LostLeadership();
        // Another change still pending, a transfer in progress, a learner a few entries behind, a
        // voter (or the learner) still blank: its leader hears it caught up at its next answer.
        if (e.message === 'conf-change-pending' || e.message === 'transferring' || e.message.includes('is behind') || e.message.includes(' is blank ')) {
          waitingOn = `: ${e.message}`;
          await sleep(POLL_MS);
          continue;
        }
        if (done(r.node.conf)) continue;
        throw new Refused(e.message);
      }
    }
  }

  /** Waits until everything in this leader's log so far (so the configuration in force) is committed. */
  private async waitCommitted(deadline: number): Promise<void> {
    const { term, lastIndex } = this.o.replica.node.status;
    for (;;) {
      const st = this.o.replica.node.status;
      if (st.role !== 'leader' || st.term !== term) throw new LostLeadership();
      if (st.commit >= lastIndex) return;
      if (Date.now() > deadline) throw new Error('the configuration change did not commit in time');
      await sleep(POLL_MS);
    }
  }

  /** Waits until the learner's log matches the leader's commit index. */
  private async waitCaughtUp(id: number, deadline: number): Promise<void> {
    // Asked to add itself (an "is it a caught-up voter" check of every member): the leader's log is its own.
    if (id === this.o.replica.node.status.id) return;
    for (;;) {
      const st = this.o.replica.node.status;
      if (st.role !== 'leader') throw new LostLeadership();
      const match = st.progress.find((p) => p.id === id)?.match ?? 0;
      if (match >= st.commit) return;
      if (Date.now() > deadline) throw new Error(`replica ${id} has not caught up (at ${match} of ${st.commit}); is it running with --join?`);
      await sleep(POLL_MS);
    }
  }

  private notLeader(): Response {
    const leaderId = this.o.replica.leader;
    return { kind: 'error', error: { code: 'NOT_LEADER', message: 'membership changes are made by the leader', leaderId, leaderAddr: leaderId ? this.o.book.addressOf(leaderId) : '' } };
  }
}

function isMember(c: ConfState, id: number): boolean {
  return c.voters.includes(id) || c.learners.includes(id);
}

function bad(message: string): Response {
  return { kind: 'error', error: { code: 'BAD_REQUEST', message } };
}

class TimeoutError extends Error {}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new TimeoutError('timed out')), Math.max(0, ms));
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e as Error);
      },
    );
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
