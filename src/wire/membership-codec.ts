// Adding and removing a replica of a group (docs/protocol.md §4.7, docs/membership.md). An admin
// client sends it to any replica of the group over an ordinary client connection; the group's leader
// carries it out (others answer NOT_LEADER with a hint):
//   MEMBERSHIP (0x20)  u8 op (1 add, 2 remove) | u32 group | u32 replicaId | str address  → OK or ERROR
// `address` is the new replica's native host:port (empty for remove). Big-endian, strict.
import { addressProblem } from '../address/address.ts';
import { Reader, utf8Size } from './bytes.ts';
import { allocFrame, finishFrame } from './frame.ts';
import { FrameType } from './frame-types.ts';

export interface MembershipChange {
  op: 'add' | 'remove';
  group: number;
  replicaId: number;
  /** host:port of the replica's native door; '' for remove. */
  address: string;
}

const OPS = { add: 1, remove: 2 } as const;

export function encodeMembership(requestId: number, c: MembershipChange): Buffer {
  const n = utf8Size(c.address);
  const w = allocFrame(FrameType.Membership, requestId, 1 + 4 + 4 + 2 + n);
  w.u8(OPS[c.op]);
  w.u32(c.group);
  w.u32(c.replicaId);
  w.str16(c.address, n);
  return finishFrame(w);
}

export function decodeMembership(body: Uint8Array): MembershipChange {
  const r = new Reader(body, 'membership change');
  const code = r.u8();
  const op = code === OPS.add ? 'add' : code === OPS.remove ? 'remove' : r.fail(`unknown membership op ${code}`);
  const group = r.u32();
  const replicaId = r.u32();
  if (replicaId === 0) r.fail('replica id 0 is not valid');
  const address = r.str16();
  r.done();
  if (op === 'add' && address === '') r.fail('adding a replica needs its address');
  // Every replica of the group dials it once the change is in the log: refuse it at the door.
  const problem = op === 'add' ? addressProblem(address) : undefined;
  if (problem) r.fail(problem);
  return { op, group, replicaId, address };
}
