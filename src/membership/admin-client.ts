// The admin side of a membership change: finds the group's leader (following NOT_LEADER hints) and
// repeats the request until it succeeds, is refused, or the deadline passes. Repeating is safe:
// the leader re-checks every step (executor.ts).
import { Connection, ConnectionError } from '../cluster/connection.ts';
import { groupOf } from '../placement/config.ts';
import { awaitConfig } from '../resharding/admin.ts';
import { decodeResponse, type Response } from '../wire/index.ts';
import { encodeMembership, type MembershipChange } from '../wire/membership-codec.ts';

const PAUSE_MS = 200;

/** Sends `change` to the replicas at `addresses` (any of them; the leader answers). */
export async function changeMembership(addresses: string[], change: MembershipChange, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const conns = new Map<string, Connection>();
  const conn = (a: string): Connection => {
    let c = conns.get(a);
    if (!c) conns.set(a, (c = new Connection(a)));
    return c;
  };
  let order = [...new Set(addresses)];
  let last = 'no replica answered';
  try {
    while (Date.now() < deadline) {
      const addr = order[0]!;
      let res: Response;
      try {
        const f = await conn(addr).call((id) => encodeMembership(id, change), Math.max(1, deadline - Date.now()));
        res = decodeResponse(f.type, f.body);
      } catch (e) {
        if (!(e instanceof ConnectionError)) throw e;
        last = `${addr}: ${e.message}`;
        order = [...order.slice(1), addr];
        await sleep(PAUSE_MS);
        continue;
      }
      if (res.kind !== 'error') return;
      const err = res.error;
      last = `${addr}: ${err.code}: ${err.message}`;
      if (err.code === 'BAD_REQUEST' || err.code === 'TOO_LARGE') throw new Error(`${change.op} replica ${change.replicaId} refused: ${err.message}`);
      if (err.code === 'NOT_LEADER' && err.leaderAddr && err.leaderAddr !== addr) {
        order = [err.leaderAddr, ...order.filter((a) => a !== err.leaderAddr)];
        continue;
      }
      order = [...order.slice(1), addr];
      await sleep(PAUSE_MS);
    }
    throw new Error(`${change.op} replica ${change.replicaId} of group ${change.group} did not complete: ${last}`);
  } finally {
    for (const c of conns.values()) c.close();
  }
}

/**
 * Same, finding the group's replicas in the cluster configuration held by the placement group. One
 * deadline covers both: reading the configuration waits while the placement group has no leader
 * (`say`: what it waits for), then the change gets the time left.
 */
export async function changeGroupMembership(placement: string[], change: MembershipChange, timeoutMs = 120_000, say?: (line: string) => void): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const config = await awaitConfig(placement, { timeoutMs, flag: '--timeout-ms', ...(say ? { say } : {}) });
  const group = config && groupOf(config, change.group);
  if (!group) throw new Error(`group ${change.group} is not in the cluster configuration`);
  await changeMembership(
    group.replicas.map((r) => r.address),
    change,
    Math.max(1, deadline - Date.now()),
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
