// A client request relayed by a replica to its group's leader. The inner request travels as its
// original type byte and body, untouched, so forwarding never re-encodes. The leader answers with
// an ordinary response frame carrying the FORWARD frame's requestId; the forwarder maps that id
// back to the client's. `hops` lets a receiver refuse to forward again (no loops while leadership
// moves): it answers NOT_LEADER instead.

import { Reader } from './bytes.ts';
import { allocFrame, finishFrame } from './frame.ts';
import { frameClass, FrameType } from './frame-types.ts';

export interface Forwarded {
  /** Client request frame type (0x01–0x3F). */
  type: number;
  hops: number;
  /** The client request body, a view into the forward frame. */
  body: Uint8Array;
}

export function encodeForward(requestId: number, f: Forwarded): Buffer {
  if (frameClass(f.type) !== 'client') throw new RangeError(`cannot forward frame type ${f.type}`);
  const w = allocFrame(FrameType.Forward, requestId, 2 + f.body.length);
  w.u8(f.type);
  w.u8(f.hops);
  w.raw(f.body);
  return finishFrame(w);
}

export function decodeForward(body: Uint8Array): Forwarded {
  const r = new Reader(body, 'forward');
  const type = r.u8();
  if (frameClass(type) !== 'client') r.fail(`forwarded frame type 0x${type.toString(16)} is not a client request`);
  const hops = r.u8();
  return { type, hops, body: r.raw(r.remaining) };
}
