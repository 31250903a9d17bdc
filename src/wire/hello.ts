// The handshake on replica links. The dialing replica sends HELLO first; the acceptor checks it
// (magic, version, group) and answers with its own HELLO, or with ERROR BAD_REQUEST and closes.
// Until both HELLOs are exchanged no other frame is valid on the link. requestId is 0.
// Since version 3 the acceptor's answer to a dialer of version 3 or more may add the id of the
// process that answers, so the dialer can carry every link to that process on one connection
// (channel.ts); a dialer of an older version gets the old layout, which is all it reads.

import { Reader } from './bytes.ts';
import { allocFrame, finishFrame } from './frame.ts';
import { FrameType } from './frame-types.ts';

/** "KVSR": lets a tracer or a confused peer recognise a replica link from its first frame. */
export const HELLO_MAGIC = 0x4b56_5352;
/** Bumped on any incompatible change to a body layout. */
export const PROTOCOL_VERSION = 4;

export interface Hello {
  version: number;
  /** Sender's replica id (u32, never 0). */
  replicaId: number;
  /** Raft group the sender belongs to (u32). */
  groupId: number;
  /**
   * The acceptor's process (its link hub), random per process life; only in an acceptor's answer
   * to a dialer of version 3 or more. Links that reach the same process may share a connection.
   */
  process?: number;
}

const HELLO_BYTES = 4 + 2 + 4 + 4;
const PROCESS_BYTES = 8;

export function encodeHello(h: Hello): Buffer {
  if (h.replicaId >>> 0 !== h.replicaId || h.replicaId === 0) throw new RangeError(`replica id ${h.replicaId}`);
  if (h.groupId >>> 0 !== h.groupId) throw new RangeError(`group id ${h.groupId}`);
  if (h.process !== undefined && h.version < 3) throw new RangeError(`a version ${h.version} HELLO names no process`);
  const w = allocFrame(FrameType.Hello, 0, HELLO_BYTES + (h.process === undefined ? 0 : PROCESS_BYTES));
  w.u32(HELLO_MAGIC);
  w.u16(h.version);
  w.u32(h.replicaId);
  w.u32(h.groupId);
  if (h.process !== undefined) w.u64(h.process);
  return finishFrame(w);
}

/** Throws BadRequestError on a wrong magic, version 0 or a malformed body. */
export function decodeHello(body: Uint8Array): Hello {
  const r = new Reader(body, 'hello');
  if (r.u32() !== HELLO_MAGIC) r.fail('bad magic');
  const version = r.u16();
  // Versions start at 1, and every version since is still spoken (a replica sends a peer only
  // what the peer's HELLO version reads), so only 0 is unsupported.
  if (version === 0) r.fail('unsupported version 0');
  const replicaId = r.u32();
  if (replicaId === 0) r.fail('replica id 0');
  const groupId = r.u32();
  const process = version >= 3 && r.remaining === PROCESS_BYTES ? r.u64() : undefined;
  r.done();
  return process === undefined ? { version, replicaId, groupId } : { version, replicaId, groupId, process };
}
