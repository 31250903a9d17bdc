// The in-process tap as a trace source: the transport hands over every frame it writes on a replica
// link, whole, with its sender and receiver — so no reassembly and no address book are needed.
// The tap call only queues a view of the frame (the transport encodes every frame into a fresh
// buffer and never changes it after writing) and returns; the queue is decoded later in the event
// loop, never inside the transport's write. The queue is bounded in frames and bytes.
import type { Tap } from '../transport/tap.ts';
import type { FrameInput, KnownEnds } from './lines.ts';

export interface TappedFrame extends KnownEnds {
  frame: FrameInput;
}

export interface TapSourceOptions {
  /** Body bytes looked at per frame (default: all; the tap sees whole frames). */
  maxBodyPrefix?: number;
  /** Frames waiting for the decoder before new ones are dropped (and counted). */
  maxQueued?: number;
  /** Bytes of frames kept alive by the queue before new ones are dropped (and counted). */
  maxQueuedBytes?: number;
  now?: () => bigint;
}

export class TapSource {
  readonly kind = 'tap';
  private queue: TappedFrame[] = [];
  private queuedBytes = 0;
  private sink: ((batch: TappedFrame[]) => void) | undefined;
  private scheduled: NodeJS.Immediate | undefined;
  private delivered = 0;
  private dropped = 0;
  private readonly maxBodyPrefix: number;
  private readonly maxQueued: number;
  private readonly maxQueuedBytes: number;
  private readonly now: () => bigint;

  constructor(opts: TapSourceOptions = {}) {
    this.maxBodyPrefix = opts.maxBodyPrefix ?? Infinity;
    this.maxQueued = opts.maxQueued ?? 100_000;
    this.maxQueuedBytes = opts.maxQueuedBytes ?? 64 << 20;
    this.now = opts.now ?? (() => process.hrtime.bigint());
  }

  /** Give this to the transport (`ServerOptions.tap`). Frames before start() or after stop() are ignored. */
  readonly tap: Tap = (from, to, bytes) => {
    if (this.sink === undefined) return;
    if (this.queue.length >= this.maxQueued || this.queuedBytes + bytes.length > this.maxQueuedBytes || bytes.length < 9) {
      this.dropped++;
      return;
    }
    const length = readU32(bytes, 0);
    const end = Math.min(bytes.length, 9 + Math.min(length - 5, this.maxBodyPrefix));
    this.queuedBytes += bytes.length;
    this.queue.push({ from, to, frame: { ts: this.now(), type: bytes[4] ?? 0, requestId: readU32(bytes, 5), length, bodyPrefix: bytes.subarray(9, end) } });
    this.scheduled ??= setImmediate(() => this.flush());
  };

  start(sink: (batch: TappedFrame[]) => void): void {
    this.sink = sink;
  }

  /** Delivers what is queued, then ignores further frames. */
  stop(): Promise<void> {
    this.flush();
    this.sink = undefined;
    return Promise.resolve();
  }

  close(): Promise<void> {
    return this.stop();
  }

  stats(): { delivered: number; dropped: number } {
    return { delivered: this.delivered, dropped: this.dropped };
  }

  private flush(): void {
    if (this.scheduled !== undefined) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    const batch = this.queue;
    if (batch.length === 0 || this.sink === undefined) return;
    this.queue = [];
    this.queuedBytes = 0;
    this.delivered += batch.length;
    this.sink(batch);
  }
}

function readU32(b: Uint8Array, at: number): number {
  return (((b[at] ?? 0) << 24) | ((b[at + 1] ?? 0) << 16) | ((b[at + 2] ?? 0) << 8) | (b[at + 3] ?? 0)) >>> 0;
}
