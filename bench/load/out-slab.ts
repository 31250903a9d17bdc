// Outgoing bytes for one socket, encoded in place. Requests of one event-loop turn are appended to
// a slab and handed to the socket as one write; the slab is never rewound (the socket may still
// hold earlier regions), a fresh one is taken when it fills. So the per-request cost is a few byte
// copies, and the allocations are one slab per SLAB_BYTES plus one view per flush.
import type net from 'node:net';

const SLAB_BYTES = 256 * 1024;

export class OutSlab {
  buf: Buffer = Buffer.allocUnsafeSlow(SLAB_BYTES);
  pos = 0;
  private start = 0;

  constructor(private readonly socket: net.Socket) {}

  /** Makes room for n more bytes (carrying unflushed bytes over to a new slab); returns pos. */
  reserve(n: number): number {
    if (this.buf.length - this.pos < n) {
      const pending = this.pos - this.start;
      const next = Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, pending + n));
      this.buf.copy(next, 0, this.start, this.pos);
      this.buf = next;
      this.start = 0;
      this.pos = pending;
    }
    return this.pos;
  }

  get pending(): number {
    return this.pos - this.start;
  }

  flush(): void {
    if (this.pos === this.start) return;
    this.socket.write(this.buf.subarray(this.start, this.pos));
    this.start = this.pos;
  }
}

/** Runs `fn` once at the end of the current turn however many times it is asked (write coalescing). */
export function coalescer(fn: () => void): () => void {
  let queued = false;
  const run = (): void => {
    queued = false;
    fn();
  };
  return () => {
    if (queued) return;
    queued = true;
    process.nextTick(run);
  };
}
