// What every capture source delivers: TCP segments, one record each. The eBPF
// capture and the in-process tap both implement SegmentSource, so the same
// reassembly → frames pipeline serves either.

export interface Endpoint {
  readonly addr: string;
  readonly port: number;
}

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;

export interface SegmentRecord {
  /** Nanoseconds on CLOCK_MONOTONIC (bpf_ktime_get_ns, process.hrtime.bigint). */
  readonly ts: bigint;
  readonly src: Endpoint;
  readonly dst: Endpoint;
  /**
   * TCP sequence number (u32) of the first payload byte, or of the SYN/FIN.
   * A tap that does not see real TCP numbers counts bytes per direction of a
   * connection itself: a SYN record with any start value, then seq advancing
   * by payload length, and a FIN at the end.
   */
  readonly seq: number;
  /** TCP flags byte (TCP_* bits). */
  readonly flags: number;
  /** Captured payload: all of it, or a prefix when the capture cut it. */
  readonly payload: Uint8Array;
  /** Full payload length when `payload` is a prefix (snap length); else omitted. */
  readonly payloadLength?: number;
  /** Where the capture saw it; on lo every segment appears once in each. */
  readonly direction?: 'ingress' | 'egress';
}

export type SegmentSink = (batch: readonly SegmentRecord[]) => void;

export interface SourceStats {
  /** Records handed to the sink. */
  readonly delivered: number;
  /** Records the source knows it lost (ring buffer full, tap queue overflow). */
  readonly dropped: number;
}

export interface SegmentSource {
  readonly kind: 'ebpf' | 'tap';
  /** Begins delivering batches; the sink runs on the main thread. */
  start(sink: SegmentSink): void;
  /** Resolves after the last batch has reached the sink. */
  stop(): Promise<void>;
  /** Stops if needed and releases everything (for eBPF: detaches from the interface). */
  close(): Promise<void>;
  stats(): SourceStats;
}
