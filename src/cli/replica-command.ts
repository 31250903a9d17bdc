// `kvs replica add|remove`: change the replicas of one shard group, live (docs/membership.md).
// With a cluster started by `kvs up` (DIR/cluster.json and its control socket), `add` also starts
// the new replica process and both keep cluster.json current; otherwise the new replica is started
// by hand with `kvs server --join` and its --id and --address given here.
import { changeGroupMembership } from '../membership/admin-client.ts';
import { callControl } from './control.ts';
import { spreadGroup } from './spread-group.ts';
import { placementEndpoints, readCluster } from './cluster-file.ts';
import { ExitCode, UsageError, parse } from './args.ts';
import { addressProblem } from '../address/address.ts';
import { MAX_TIMER_MS } from '../client/client.ts';

const HELP = `Usage: kvs replica add --group G [--id N --address HOST:PORT] [--data DIR | --placement LIST]
       kvs replica remove --group G --id N [--data DIR | --placement LIST]
       kvs replica balance --group G [--data DIR]

Adds or removes one replica of shard group G while it serves traffic. The group's leader does it:
add = add as a learner, wait until it has the log, list it in the cluster configuration, promote it
to voter; remove = (if it is the leader, hand leadership over first) drop it from the configuration,
remove it from the Raft group.

With a cluster started by "kvs up" (DIR/cluster.json, default ./data), "add" starts the new replica
itself (next free ports, a new id) and "remove" stops the removed one; cluster.json is kept current.
A removal can leave one host process of kvs up with two replicas of the group and another with
none (after an add, which put a replica beside one of the group); "remove" then spreads the group
again: it adds a replica in the process lacking one and, once that is a voter, removes one from
the doubled process, never going below the group's count. "balance" does only that, and finishes a
spread that was interrupted (safe to repeat).
Otherwise give --placement and, for add, the --id and --address of a replica you started with
  kvs server --id N --group G --listen HOST:PORT --data DIR2 --placement LIST --join

  --group G          the shard group
  --id N             replica id (add: chosen by kvs up when omitted)
  --address H:P      native address of the new replica (add without kvs up)
  --data DIR         the kvs up data directory (default ./data)
  --placement LIST   placement group's native addresses (instead of DIR/cluster.json)
  --timeout-ms N     give up after this long (default 120000; the request is safe to repeat). While
                     the placement group or the shard group has no leader (its processes were just
                     killed and restart), it waits, saying so on stderr`;

export async function runReplica(argv: string[]): Promise<number> {
  const args = parse(
    argv,
    { group: { type: 'string' }, id: { type: 'string' }, address: { type: 'string' }, data: { type: 'string' }, placement: { type: 'string' }, 'timeout-ms': { type: 'string' } },
    HELP,
    1,
  );
  if (!args) return ExitCode.Ok;
  const op = args.positionals[0];
  if (op !== 'add' && op !== 'remove' && op !== 'balance') throw new UsageError(`expected "add", "remove" or "balance", got "${op}"\n\n${HELP}`);
  const v = args.values;
  const group = positive('group', v.group);
  // Past MAX_TIMER_MS setTimeout fires at once: the command would give up immediately.
  const timeoutMs = v['timeout-ms'] === undefined ? 120_000 : positive('timeout-ms', v['timeout-ms'], MAX_TIMER_MS);
  // Malformed addresses are the caller's mistake (exit 2), not something for the cluster to refuse:
  // an --address used to reach the group's leader and come back "refused" with exit 3.
  if (typeof v.address === 'string' && addressProblem(v.address)) throw new UsageError(`--address: ${addressProblem(v.address)}`);
  for (const a of typeof v.placement === 'string' ? v.placement.split(',').filter(Boolean) : []) {
    if (addressProblem(a)) throw new UsageError(`--placement: ${addressProblem(a)}`);
  }
  const dataDir = String(v.data ?? 'data');
  // Without --placement, the cluster is the one `kvs up` runs from DIR: it starts and stops processes.
  const viaUp = typeof v.placement !== 'string';
  const placement = viaUp ? placementEndpoints(readCluster(dataDir)) : String(v.placement).split(',').filter(Boolean);
  if (placement.length === 0) throw new UsageError(`no cluster in ${dataDir} (start one with "kvs up", or give --placement)`);

  const waiting = (line: string): void => console.error(`kvs replica: ${line}`);
  const spread = async (afterRemoval: boolean): Promise<number> => {
    try {
      const changes = await spreadGroup({ dataDir, placement, group, timeoutMs, afterRemoval, say: (l) => console.log(l), waiting });
      if (changes > 0 || !afterRemoval) console.log(`group ${group}: spread over kvs up's host processes (${changes} membership change${changes === 1 ? '' : 's'})`);
      return ExitCode.Ok;
    } catch (e) {
      console.error(`kvs replica: group ${group} is not spread over the host processes: ${(e as Error).message}; "kvs replica balance --group ${group}" continues`);
      return ExitCode.Failed;
    }
  };
  if (op === 'balance') {
    if (!viaUp) throw new UsageError(`"balance" needs the cluster of a running "kvs up" (--data), which knows its host processes\n\n${HELP}`);
    return spread(false);
  }
  if (op === 'remove') {
    const id = positive('id', v.id);
    if (viaUp) {
      // The group's leader answers a removal of a non-member with success (a retried removal):
      // a wrong --group or --id must be caught here, before another group's replica is stopped.
      const listed = readCluster(dataDir).find((r) => r.id === id && r.role === 'shard');
      if (!listed) throw new UsageError(`no replica ${id} in the cluster "kvs up" runs from ${dataDir}`);
      if (listed.group !== group) throw new UsageError(`replica ${id} is a replica of shard group ${listed.group}, not ${group}`);
    }
    await changeGroupMembership(placement, { op, group, replicaId: id, address: '' }, timeoutMs, waiting);
    if (viaUp) await callControl(dataDir, { cmd: 'stop-replica', id, group });
    console.log(`replica ${id} removed from group ${group}${viaUp ? ' and stopped' : ''}`);
    return viaUp ? spread(true) : ExitCode.Ok;
  }
  let id: number;
  let address: string;
  if (viaUp && v.id === undefined && v.address === undefined) {
    const added = await callControl(dataDir, { cmd: 'add-replica', group });
    if (!added) throw new Error('kvs up did not say which replica it started');
    ({ id, address } = added);
    console.log(`started replica ${id} at ${address} (--join); adding it to group ${group}`);
  } else {
    if (v.id === undefined || typeof v.address !== 'string') throw new UsageError(`give both --id and --address of the replica started with --join\n\n${HELP}`);
    id = positive('id', v.id);
    address = v.address;
  }
  await changeGroupMembership(placement, { op, group, replicaId: id, address }, timeoutMs, waiting);
  console.log(`replica ${id} (${address}) is a voter of group ${group}`);
  return ExitCode.Ok;
}

function positive(name: string, v: unknown, max = 0xffff_ffff): number {
  const n = Number(v);
  if (v === undefined || !Number.isInteger(n) || n < 1 || n > max) throw new UsageError(`--${name} must be a positive integer${max === 0xffff_ffff ? '' : `, at most ${max}`}`);
  return n;
}
