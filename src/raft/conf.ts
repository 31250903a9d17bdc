// Membership: encoding of configuration entries and single-server changes.
//
// A configuration entry carries the *full* new configuration, not a delta, so a replica that joins
// with an empty log learns the whole membership from the first configuration entry it receives.
import type { ConfState, NodeId } from './types.ts';

export type ConfChange = { type: 'add-learner' | 'promote' | 'remove'; node: NodeId };

export function encodeConf(conf: ConfState): Uint8Array {
  const out = new Uint8Array(4 + 4 * (conf.voters.length + conf.learners.length));
  const view = new DataView(out.buffer);
  view.setUint16(0, conf.voters.length);
  view.setUint16(2, conf.learners.length);
  let at = 4;
  for (const id of [...conf.voters, ...conf.learners]) {
    view.setUint32(at, id);
    at += 4;
  }
  return out;
}

export function decodeConf(data: Uint8Array): ConfState {
  if (data.length < 4) throw new Error('configuration entry too short');
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const nv = view.getUint16(0);
  const nl = view.getUint16(2);
  if (data.length !== 4 + 4 * (nv + nl)) throw new Error('configuration entry has a bad length');
  const ids: NodeId[] = [];
  for (let i = 0; i < nv + nl; i++) ids.push(view.getUint32(4 + 4 * i));
  return { voters: ids.slice(0, nv), learners: ids.slice(nv) };
}

/**
 * Applies one single-server change, or says why it is not allowed. Voters are only added through
 * learners (promote), so a new server never weakens the quorum before it has the log.
 */
export function applyConfChange(conf: ConfState, change: ConfChange): ConfState | string {
  const { node } = change;
  const isVoter = conf.voters.includes(node);
  const isLearner = conf.learners.includes(node);
  switch (change.type) {
    case 'add-learner':
      if (isVoter || isLearner) return `node ${node} is already a member`;
      return { voters: [...conf.voters], learners: sorted([...conf.learners, node]) };
    case 'promote':
      if (!isLearner) return `node ${node} is not a learner`;
      return { voters: sorted([...conf.voters, node]), learners: conf.learners.filter((n) => n !== node) };
    case 'remove':
      if (!isVoter && !isLearner) return `node ${node} is not a member`;
      if (isVoter && conf.voters.length === 1) return 'cannot remove the last voter';
      return { voters: conf.voters.filter((n) => n !== node), learners: conf.learners.filter((n) => n !== node) };
  }
}

export function quorum(voters: number): number {
  return Math.floor(voters / 2) + 1;
}

/** The largest value that a majority of `values` (one per voter) is at or above. */
export function majorityValue(values: number[]): number {
  const desc = [...values].sort((a, b) => b - a);
  return desc[Math.floor(desc.length / 2)] ?? 0;
}

function sorted(ids: NodeId[]): NodeId[] {
  return ids.sort((a, b) => a - b);
}
