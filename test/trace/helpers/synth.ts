// Builders for frames and segment records in unit tests.
import type { Frame } from '../../../src/trace/frames.ts';
import type { Endpoint, SegmentRecord } from '../../../src/trace/source.ts';

export const CLIENT: Endpoint = { addr: '127.0.0.1', port: 40000 };
export const SERVER: Endpoint = { addr: '127.0.0.1', port: 23400 };

export interface SentFrame {
  type: number;
  requestId: number;
  body: Uint8Array;
}

/** `[u32 len BE][u8 type][u32 requestId BE][body]`, len counting everything after itself. */
export function encodeFrame(f: SentFrame): Uint8Array {
  const out = new Uint8Array(9 + f.body.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, 5 + f.body.length);
  v.setUint8(4, f.type);
  v.setUint32(5, f.requestId);
  out.set(f.body, 9);
  return out;
}

/** Deterministic frames of varied sizes (including empty bodies). */
export function makeFrames(count: number, maxBody: number, seed = 1): SentFrame[] {
  let x = seed;
  const rnd = () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x >>> 8;
  };
  const frames: SentFrame[] = [];
  for (let i = 0; i < count; i++) {
    const body = new Uint8Array(rnd() % (maxBody + 1));
    for (let j = 0; j < body.length; j++) body[j] = rnd() & 0xff;
    frames.push({ type: 1 + (rnd() % 20), requestId: rnd(), body });
  }
  return frames;
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export interface SegOptions {
  seq: number;
  payload?: Uint8Array;
  flags?: number;
  ts?: bigint;
  payloadLength?: number;
  src?: Endpoint;
  dst?: Endpoint;
  direction?: 'ingress' | 'egress';
}

export function seg(o: SegOptions): SegmentRecord {
  return {
    ts: o.ts ?? 0n,
    src: o.src ?? CLIENT,
    dst: o.dst ?? SERVER,
    seq: o.seq >>> 0,
    flags: o.flags ?? 0x10,
    payload: o.payload ?? new Uint8Array(0),
    ...(o.payloadLength !== undefined ? { payloadLength: o.payloadLength } : {}),
    ...(o.direction ? { direction: o.direction } : {}),
  };
}

/** The comparable part of a decoded frame. */
export function summary(f: Frame): { type: number; requestId: number; body: string } {
  return { type: f.type, requestId: f.requestId, body: Buffer.from(f.bodyPrefix).toString('hex') };
}

export function expected(frames: readonly SentFrame[], maxBodyPrefix = 256): ReturnType<typeof summary>[] {
  return frames.map((f) => ({
    type: f.type,
    requestId: f.requestId,
    body: Buffer.from(f.body.subarray(0, maxBodyPrefix)).toString('hex'),
  }));
}
