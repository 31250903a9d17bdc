// Per-flow TCP reassembly: turns segment records (in any order, duplicated,
// overlapping, cut by the snap length, some lost) into one ordered stream of
// events per direction of a connection: open, data, gap, close.
//
// A flow is the directed 4-tuple. On lo the capture sees each segment twice
// (egress, then ingress); both copies go to the same flow and the second is
// dropped as a retransmission by sequence number — and fills in for the first
// when the ring buffer lost it.
import { TCP_FIN, TCP_RST, TCP_SYN, type Endpoint, type SegmentRecord } from './source.ts';

export interface Flow {
  readonly key: string;
  readonly src: Endpoint;
  readonly dst: Endpoint;
}

export type GapCause = 'snap' | 'lost';
export type CloseCause = 'fin' | 'rst' | 'syn' | 'evicted' | 'flush';

export type StreamEvent =
  /** `aligned`: the stream starts at its first byte (SYN seen), so at a frame boundary. */
  | { kind: 'open'; flow: Flow; ts: bigint; aligned: boolean }
  | { kind: 'data'; flow: Flow; ts: bigint; offset: number; bytes: Uint8Array }
  /** Bytes that passed on the wire but were not captured; their count is exact. */
  | { kind: 'gap'; flow: Flow; ts: bigint; offset: number; length: number; cause: GapCause }
  | { kind: 'close'; flow: Flow; ts: bigint; cause: CloseCause };

export interface ReassemblyOptions {
  /** Flows (open or recently closed) kept; the least recently used is evicted. */
  maxFlows?: number;
  /** Out-of-order bytes held per flow before the hole in front of them is declared lost. */
  maxBufferedBytes?: number;
  maxBufferedSegments?: number;
  /** A hole older than this (record time) is declared lost by tick(). */
  holeTimeoutNs?: bigint;
}

export interface ReassemblyStats {
  segments: number;
  deliveredBytes: number;
  duplicateBytes: number;
  snapGapBytes: number;
  lostGapBytes: number;
  outOfOrderSegments: number;
  flowsOpened: number;
  flowsEvicted: number;
}

interface Pending {
  off: number;
  len: number;
  data: Uint8Array;
  ts: bigint;
  fin: boolean;
}

interface FlowState {
  readonly flow: Flow;
  open: boolean;
  /** SYN's sequence number when the stream began with one. */
  isn: number | undefined;
  /** Next expected sequence number (u32) and its stream offset (the two move together). */
  nextSeq: number;
  nextOff: number;
  /** Segments beyond a hole, sorted by offset. */
  pending: Pending[];
  pendingBytes: number;
  holeSince: bigint;
  lastUse: number;
}

const DEFAULTS = {
  maxFlows: 4096,
  maxBufferedBytes: 1 << 20,
  maxBufferedSegments: 1024,
  holeTimeoutNs: 1_000_000_000n,
};

export function flowKey(src: Endpoint, dst: Endpoint): string {
  return `${src.addr}|${src.port}|${dst.addr}|${dst.port}`;
}

export class Reassembler {
  readonly stats: ReassemblyStats = {
    segments: 0,
    deliveredBytes: 0,
    duplicateBytes: 0,
    snapGapBytes: 0,
    lostGapBytes: 0,
    outOfOrderSegments: 0,
    flowsOpened: 0,
    flowsEvicted: 0,
  };
  private readonly opts: typeof DEFAULTS;
  private readonly flows = new Map<string, FlowState>();
  /** Bumped per record; a flow's lastUse orders eviction. */
  private clock = 0;
  private readonly holey = new Set<FlowState>();

  constructor(
    private readonly emit: (e: StreamEvent) => void,
    options: ReassemblyOptions = {},
  ) {
    this.opts = { ...DEFAULTS, ...stripUndefined(options) };
  }

  push(rec: SegmentRecord): void {
    this.stats.segments++;
    const len = Math.max(rec.payloadLength ?? rec.payload.length, rec.payload.length);
    const st = this.flowFor(rec, len);
    if (st === undefined) return;
    if (!st.open) {
      this.stats.duplicateBytes += len; // a late copy of what came before the close
      return;
    }
    // A SYN takes the sequence number before the first data byte.
    const seq = (rec.seq + ((rec.flags & TCP_SYN) !== 0 ? 1 : 0)) >>> 0;
    if ((rec.flags & TCP_RST) !== 0) this.reset(st, seq, rec.ts);
    else this.place(st, seq, len, rec);
  }

  /** The flow a record belongs to, starting a new stream where it begins one; undefined: ignore it. */
  private flowFor(rec: SegmentRecord, len: number): FlowState | undefined {
    const key = flowKey(rec.src, rec.dst);
    const st = this.flows.get(key);
    if (st) st.lastUse = ++this.clock;
    const seq = rec.seq >>> 0;
    if ((rec.flags & TCP_SYN) !== 0) {
      if (st && st.isn === seq) {
        this.stats.duplicateBytes += len; // the other copy on lo, or a retransmitted SYN
        return undefined;
      }
      if (st?.open) this.close(st, rec.ts, 'syn');
      const fresh = this.begin(key, rec, (seq + 1) >>> 0, true);
      fresh.isn = seq;
      return fresh;
    }
    if (st && (st.open || !startsNewStream(st, seq, len))) return st;
    if ((rec.flags & TCP_RST) !== 0) return undefined; // nothing to reset
    return this.begin(key, rec, seq, false);
  }

  private reset(st: FlowState, seq: number, ts: bigint): void {
    this.giveUpHoles(st);
    if (!st.open) return;
    // Whatever was sent before the RST and not seen yet is gone; late copies of it are stale.
    if (((seq - st.nextSeq) | 0) > 0) st.nextSeq = seq;
    this.close(st, ts, 'rst');
  }

  /** Delivers an in-order segment (and what it unblocks) or holds it behind a hole. */
  private place(st: FlowState, seq: number, len: number, rec: SegmentRecord): void {
    const fin = (rec.flags & TCP_FIN) !== 0;
    const off = st.nextOff + ((seq - st.nextSeq) | 0);
    const end = off + len;
    if (end < st.nextOff || (end === st.nextOff && !fin)) {
      this.stats.duplicateBytes += len;
      return;
    }
    const data = rec.payload;
    if (off <= st.nextOff) {
      this.deliver(st, off, len, data, rec.ts, fin);
      if (st.pending.length > 0) this.drain(st);
      return;
    }
    if (len === 0 && !fin) return; // a bare ACK ahead of a hole carries nothing to keep
    this.stats.outOfOrderSegments++;
    insertSorted(st.pending, { off, len, data, ts: rec.ts, fin });
    st.pendingBytes += data.length;
    if (!this.holey.has(st)) {
      st.holeSince = rec.ts;
      this.holey.add(st);
    }
    while (
      st.open &&
      st.pending.length > 0 &&
      (st.pendingBytes > this.opts.maxBufferedBytes || st.pending.length > this.opts.maxBufferedSegments)
    ) {
      this.skipHole(st);
    }
  }

  /** Declares holes older than holeTimeoutNs (by record time `nowNs`) lost. */
  tick(nowNs: bigint): void {
    for (const st of [...this.holey]) {
      while (st.open && st.pending.length > 0 && nowNs - st.holeSince >= this.opts.holeTimeoutNs) {
        this.skipHole(st);
      }
    }
  }

  /** End of capture: gives up on every hole and closes every flow. */
  flush(ts: bigint = 0n): void {
    for (const st of this.flows.values()) {
      if (!st.open) continue;
      this.giveUpHoles(st);
      if (st.open) this.close(st, ts, 'flush');
    }
    this.flows.clear();
    this.holey.clear();
  }

  private begin(key: string, rec: SegmentRecord, nextSeq: number, aligned: boolean): FlowState {
    const st: FlowState = {
      flow: { key, src: rec.src, dst: rec.dst },
      open: true,
      isn: undefined,
      nextSeq,
      nextOff: 0,
      pending: [],
      pendingBytes: 0,
      holeSince: 0n,
      lastUse: ++this.clock,
    };
    this.flows.set(key, st);
    while (this.flows.size > this.opts.maxFlows) this.evictOldest(rec.ts);
    this.stats.flowsOpened++;
    this.emit({ kind: 'open', flow: st.flow, ts: rec.ts, aligned });
    return st;
  }

  /** A linear scan, but only when a new flow finds the table full. */
  private evictOldest(ts: bigint): void {
    let key = '';
    let st: FlowState | undefined;
    for (const [k, s] of this.flows) {
      if (!st || s.lastUse < st.lastUse) {
        key = k;
        st = s;
      }
    }
    if (!st) return;
    this.flows.delete(key);
    this.holey.delete(st);
    if (st.open) {
      this.stats.flowsEvicted++;
      this.close(st, ts, 'evicted');
    }
  }

  /**
   * Emits the bytes of a segment at `off` (`len` long, `data` captured) beyond
   * nextOff: captured ones as data, the rest as a snap gap.
   */
  private deliver(st: FlowState, off: number, len: number, data: Uint8Array, ts: bigint, fin: boolean): void {
    const skip = st.nextOff - off;
    this.stats.duplicateBytes += Math.min(skip, len);
    const captured = Math.min(data.length, len);
    if (skip < captured) {
      const bytes = skip === 0 && captured === data.length ? data : data.subarray(skip, captured);
      this.emit({ kind: 'data', flow: st.flow, ts, offset: st.nextOff, bytes });
      this.stats.deliveredBytes += bytes.length;
      this.advance(st, bytes.length);
    }
    const uncaptured = off + len - st.nextOff;
    if (uncaptured > 0) {
      this.emit({ kind: 'gap', flow: st.flow, ts, offset: st.nextOff, length: uncaptured, cause: 'snap' });
      this.stats.snapGapBytes += uncaptured;
      this.advance(st, uncaptured);
    }
    if (fin) {
      st.nextSeq = (st.nextSeq + 1) >>> 0; // FIN takes one sequence number
      this.close(st, ts, 'fin');
    }
  }

  private drain(st: FlowState): void {
    while (st.open && st.pending.length > 0) {
      const first = st.pending[0] as Pending;
      if (first.off > st.nextOff) break;
      st.pending.shift();
      st.pendingBytes -= first.data.length;
      const end = first.off + first.len;
      if (end < st.nextOff || (end === st.nextOff && !first.fin)) this.stats.duplicateBytes += first.len;
      else this.deliver(st, first.off, first.len, first.data, first.ts, first.fin);
    }
    if (st.pending.length === 0) this.holey.delete(st);
    else st.holeSince = (st.pending[0] as Pending).ts;
  }

  /** Declares the hole before the first pending segment lost and moves past it. */
  private skipHole(st: FlowState): void {
    const first = st.pending[0] as Pending;
    const length = first.off - st.nextOff;
    this.emit({ kind: 'gap', flow: st.flow, ts: first.ts, offset: st.nextOff, length, cause: 'lost' });
    this.stats.lostGapBytes += length;
    this.advance(st, length);
    this.drain(st);
  }

  private giveUpHoles(st: FlowState): void {
    while (st.open && st.pending.length > 0) this.skipHole(st);
  }

  private advance(st: FlowState, n: number): void {
    st.nextOff += n;
    st.nextSeq = (st.nextSeq + n) >>> 0;
  }

  private close(st: FlowState, ts: bigint, cause: CloseCause): void {
    st.open = false;
    st.pending = [];
    st.pendingBytes = 0;
    this.holey.delete(st);
    this.emit({ kind: 'close', flow: st.flow, ts, cause });
  }
}

/** After a close, data at or beyond the end is a new stream whose SYN we missed. */
function startsNewStream(st: FlowState, seq: number, len: number): boolean {
  const d = (seq - st.nextSeq) | 0;
  return d > 0 || (d === 0 && len > 0);
}

function insertSorted(list: Pending[], seg: Pending): void {
  let i = list.length;
  while (i > 0 && (list[i - 1] as Pending).off > seg.off) i--;
  list.splice(i, 0, seg);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
