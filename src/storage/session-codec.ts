// Client session records: last seq, last-used time (from the log) and the cached results.
import { BadRecord, Reader, Writer } from './records.ts';
import type { OpResult } from './types.ts';

export interface SessionRecord {
  seq: number;
  time: number;
  results: OpResult[];
}

export function encodeSession(s: SessionRecord): Buffer {
  const w = new Writer().u64(s.seq).u64(s.time).u32(s.results.length);
  for (const r of s.results) {
    if (r.status === 'ok') w.u8(0);
    else if (r.status === 'cas-failed') {
      w.u8(1).u8(r.current ? 1 : 0);
      if (r.current) w.u32(r.current.length).bytes(r.current);
    } else {
      const reason = Buffer.from(r.reason, 'utf8');
      w.u8(2).u32(reason.length).bytes(reason);
    }
  }
  return w.done();
}

export function decodeSession(body: Uint8Array): SessionRecord {
  const r = new Reader(body);
  const seq = r.u64();
  const time = r.u64();
  const results: OpResult[] = [];
  for (let n = r.u32(); n > 0; n--) {
    const kind = r.u8();
    if (kind === 0) results.push({ status: 'ok' });
    else if (kind === 1) {
      const current = r.u8() === 1 ? Buffer.from(r.bytes(r.u32())) : null;
      results.push({ status: 'cas-failed', current });
    } else if (kind === 2) results.push({ status: 'rejected', reason: Buffer.from(r.bytes(r.u32())).toString('utf8') });
    else throw new BadRecord(`result kind ${kind}`);
  }
  r.end();
  return { seq, time, results };
}
