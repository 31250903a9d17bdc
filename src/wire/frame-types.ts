// The frame type byte map. The top two bits give the traffic class, so a tracer (or an eBPF
// program looking at one byte) can classify a frame without knowing any body layout:
//   00xxxxxx  0x01–0x3F  client requests            (0x00 is never valid)
//   01xxxxxx  0x40–0x7F  replica ↔ replica          (handshake, Raft, forwarding, hand-off)
//   1xxxxxxx  0x80–0xFF  responses to requests      (client responses, also on replica links)
// Numbers are never reused; new types take free slots in their class.

export const FrameType = {
  // client requests
  Ping: 0x01,
  Status: 0x02,
  Get: 0x03,
  Put: 0x04,
  Delete: 0x05,
  Cas: 0x06,
  Scan: 0x07,
  Batch: 0x08,
  /** How many keys the cluster holds (DBSIZE). */
  Count: 0x09,
  /** Admin: add or remove a replica of a group (membership-codec.ts). */
  Membership: 0x20,

  // replica ↔ replica
  Hello: 0x40,
  // 0x41–0x4D: one Raft message each, type = RAFT_BASE + MsgType (see raft-codec.ts)
  RaftPreVote: 0x41,
  RaftPreVoteResp: 0x42,
  RaftVote: 0x43,
  RaftVoteResp: 0x44,
  RaftAppend: 0x45,
  RaftAppendResp: 0x46,
  RaftHeartbeat: 0x47,
  RaftHeartbeatResp: 0x48,
  RaftSnapshot: 0x49,
  RaftSnapshotResp: 0x4a,
  RaftTimeoutNow: 0x4b,
  RaftReadIndex: 0x4c,
  RaftReadIndexResp: 0x4d,
  /** Several Raft messages for one peer, coalesced. */
  RaftBatch: 0x4f,
  /** A client request relayed by a replica to its group's leader. */
  Forward: 0x50,
  /** A frame of another pair of replicas on a link between two processes (channel.ts). */
  Channel: 0x51,
  // 0x60–0x6F reserved for partition hand-off

  // responses
  Ok: 0x80,
  Value: 0x81,
  CasResult: 0x82,
  ScanPage: 0x83,
  StatusInfo: 0x84,
  KeyCount: 0x85,
  // 0xA0–0xBF reserved for hand-off responses
  Error: 0xff,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/** Raft message frame type = RAFT_BASE + MsgType; MsgType runs 1..13. */
export const RAFT_BASE = 0x40;
export const RAFT_FIRST = FrameType.RaftPreVote;
export const RAFT_LAST = FrameType.RaftReadIndexResp;

export const HANDOFF_FIRST = 0x60;
export const HANDOFF_LAST = 0x6f;

export type FrameClass = 'client' | 'replica' | 'response' | 'invalid';

export function frameClass(type: number): FrameClass {
  if (type <= 0 || type > 0xff) return 'invalid';
  if (type < 0x40) return 'client';
  if (type < 0x80) return 'replica';
  return 'response';
}

const NAMES = new Map<number, string>();
for (const [name, value] of Object.entries(FrameType)) NAMES.set(value, name);

/** The constant's name ("RaftAppend"), or e.g. "0x5a" for an unassigned byte. */
export function frameTypeName(type: number): string {
  return NAMES.get(type) ?? `0x${type.toString(16).padStart(2, '0')}`;
}

export function isRaftFrame(type: number): boolean {
  return type >= RAFT_FIRST && type <= RAFT_LAST;
}
