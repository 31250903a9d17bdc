// Which replicas this one keeps a link to, from the Raft configuration in force. Pure.
import type { ConfState } from '../raft/types.ts';
import type { PeerAddress } from '../transport/peers.ts';

export interface PeerSet {
  peers: PeerAddress[];
  /** Members whose address is not known (yet): messages to them are dropped until it is. */
  missing: number[];
}

/**
 * The members of the configuration (voters and learners), minus this replica. A replica outside its
 * own configuration (started with --join and not told its membership yet, or removed) links to every
 * replica it knows instead: it only ever answers, and the leader adding it must hear its answers.
 */
export function wantedPeers(self: number, conf: ConfState, known: readonly PeerAddress[]): PeerSet {
  const members = [...conf.voters, ...conf.learners];
  if (!members.includes(self)) return { peers: known.filter((p) => p.id !== self), missing: [] };
  const byId = new Map(known.map((p) => [p.id, p.address]));
  const peers: PeerAddress[] = [];
  const missing: number[] = [];
  for (const id of [...new Set(members)].sort((a, b) => a - b)) {
    if (id === self) continue;
    const address = byId.get(id);
    if (address) peers.push({ id, address });
    else missing.push(id);
  }
  return { peers, missing };
}
