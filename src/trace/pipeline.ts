// Segment records → per-flow reassembly → frames. Usable as the sink of any
// SegmentSource (eBPF capture or in-process tap).
import { FrameSplitter, newFrameStats, type Frame, type FrameOptions, type FrameStats } from './frames.ts';
import { Reassembler, type ReassemblyOptions, type ReassemblyStats, type StreamEvent } from './reassembly.ts';
import type { SegmentRecord, SegmentSink } from './source.ts';

export interface TracePipelineOptions {
  onFrame: (frame: Frame) => void;
  /** Sees every stream event too (diagnostics, raw byte dumps). */
  onStreamEvent?: (event: StreamEvent) => void;
  reassembly?: ReassemblyOptions;
  frames?: FrameOptions;
}

export class TracePipeline {
  readonly frameStats: FrameStats = newFrameStats();
  private readonly reassembler: Reassembler;
  private readonly splitters = new Map<string, FrameSplitter>();
  private lastTs = 0n;

  constructor(private readonly opts: TracePipelineOptions) {
    this.reassembler = new Reassembler((e) => this.route(e), opts.reassembly);
  }

  /** A SegmentSink: reassembles a batch, then expires holes by the batch's latest time. */
  readonly sink: SegmentSink = (batch) => this.push(batch);

  push(batch: readonly SegmentRecord[]): void {
    for (const rec of batch) {
      this.reassembler.push(rec);
      if (rec.ts > this.lastTs) this.lastTs = rec.ts;
    }
    this.reassembler.tick(this.lastTs);
  }

  /** End of capture: emits what is still held (holes become gaps) and closes every flow. */
  flush(): void {
    this.reassembler.flush(this.lastTs);
  }

  get reassemblyStats(): ReassemblyStats {
    return this.reassembler.stats;
  }

  private route(e: StreamEvent): void {
    this.opts.onStreamEvent?.(e);
    let splitter = this.splitters.get(e.flow.key);
    if (e.kind === 'open') {
      splitter = new FrameSplitter(e.flow, this.opts.onFrame, this.opts.frames, this.frameStats);
      this.splitters.set(e.flow.key, splitter);
    }
    splitter?.push(e);
    if (e.kind === 'close') this.splitters.delete(e.flow.key);
  }
}
