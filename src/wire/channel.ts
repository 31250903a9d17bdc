// One connection between two processes carries the links of every pair of replicas they host
// (docs/protocol.md §6.5). The connection's own pair — the replicas whose HELLOs opened it — sends
// its frames as they are; every other pair's frame travels whole inside a CHANNEL frame that names
// the group and the two replicas. The inner frame is written after the 21-byte prefix as it was
// encoded, so wrapping costs no copy: header and frame leave in one writev.

import { Reader, Writer } from './bytes.ts';
import { HEADER_BYTES, MIN_LENGTH, readFrameHeader, type Frame } from './frame.ts';
import { FrameType } from './frame-types.ts';

/** group + from + to. */
export const CHANNEL_FIELDS_BYTES = 12;
/** The CHANNEL frame's header and fields, before the inner frame. */
export const CHANNEL_PREFIX_BYTES = HEADER_BYTES + CHANNEL_FIELDS_BYTES;

export interface ChannelAddress {
  /** The Raft group of both replicas (u32). */
  group: number;
  /** The sending replica (u32, never 0). */
  from: number;
  /** The receiving replica (u32, never 0). */
  to: number;
}

export interface ChannelFrame extends ChannelAddress {
  /** The carried frame; its body is a view into the CHANNEL frame's. */
  frame: Frame;
}

/** The prefix that, followed by `inner` (one whole encoded frame), makes a CHANNEL frame. */
export function encodeChannelPrefix(a: ChannelAddress, inner: Uint8Array): Buffer {
  if (a.group >>> 0 !== a.group) throw new RangeError(`group id ${a.group}`);
  for (const id of [a.from, a.to]) if (id >>> 0 !== id || id === 0) throw new RangeError(`replica id ${id}`);
  const w = new Writer(Buffer.allocUnsafe(CHANNEL_PREFIX_BYTES));
  w.u32(MIN_LENGTH + CHANNEL_FIELDS_BYTES + inner.length);
  w.u8(FrameType.Channel);
  w.u32(0);
  w.u32(a.group);
  w.u32(a.from);
  w.u32(a.to);
  return w.buf;
}

/** One whole CHANNEL frame in one buffer (tests, and the tracer's fixtures). */
export function encodeChannel(a: ChannelAddress, inner: Uint8Array): Buffer {
  return Buffer.concat([encodeChannelPrefix(a, inner), inner]);
}

/** Throws BadRequestError unless the body is the three ids and exactly one whole frame. */
export function decodeChannel(body: Uint8Array): ChannelFrame {
  const r = new Reader(body, 'channel');
  const group = r.u32();
  const from = r.u32();
  const to = r.u32();
  if (from === 0 || to === 0) r.fail('replica id 0');
  const rest = r.raw(r.remaining);
  const h = readFrameHeader(rest);
  if (h === null) return r.fail('carried frame shorter than a header');
  if (h.length < MIN_LENGTH || 4 + h.length !== rest.length) r.fail(`carried frame of ${rest.length} bytes says length ${h.length}`);
  if (h.type === FrameType.Channel || h.type === FrameType.Hello) r.fail('a CHANNEL frame carries no HELLO or CHANNEL');
  return { group, from, to, frame: { type: h.type, requestId: h.requestId, body: rest.subarray(HEADER_BYTES) } };
}
