// The trace runner: picks a source (eBPF on an interface and port range, or the in-process tap when
// eBPF cannot run), feeds it through the pipeline and the line decoder, and writes one line per
// message, a summary line now and then, and a final one at stop().
import { lookup } from 'node:dns/promises';
import { AddressBook, splitHostPort, type ReplicaAddress } from './address-book.ts';
import { openEbpfCapture, type EbpfCapture, type EbpfCaptureOptions } from './capture.ts';
import { formatLine, formatSummaryLine, type TraceFormat, type TraceSummary } from './format.ts';
import { isKnownType, LineDecoder, type TraceLine } from './lines.ts';
import type { Frame } from './frames.ts';
import type { AttachInfo } from './native.ts';
import { TracePipeline } from './pipeline.ts';
import { flowKey } from './reassembly.ts';
import { TCP_SYN, type SegmentRecord } from './source.ts';
import { TapSource, type TappedFrame } from './tap-source.ts';
import type { Tap } from '../transport/tap.ts';

export interface TracerOptions {
  /** The cluster's address book: names and groups for addresses. */
  replicas: readonly ReplicaAddress[];
  /** Show only what this replica sends (`kvs server --trace`). */
  self?: number;
  /** 'auto': eBPF, else the tap with one warning; 'ebpf': eBPF or an error; 'tap': the tap. */
  capture: 'auto' | 'ebpf' | 'tap';
  /** eBPF: interface and port range (source or destination port). */
  iface: string;
  ports: readonly [number, number];
  /** Payload bytes captured per segment and body bytes kept per frame (default 4096, the most the program copies). */
  snapLen?: number;
  directions?: EbpfCaptureOptions['directions'];
  /** This host's addresses on `iface` (pods: every replica listens on the same port). */
  localAddrs?: readonly string[];
  format: TraceFormat;
  /** Client connections too (default: replica links only). */
  includeClients?: boolean;
  /** Summary line interval; 0: only at stop (default 10 s). Printed only when something changed. */
  summaryEveryMs?: number;
  /** Names the trace in summary lines, e.g. "g1 r101" or "cluster". */
  label: string;
  write?: (text: string) => void;
  /** Every line as data (tests, programs). */
  onLine?: (line: TraceLine) => void;
  warn?: (line: string) => void;
  /** More eBPF options (ring size, capability pre-check, paths). */
  ebpf?: Partial<EbpfCaptureOptions>;
}

export class TraceUnavailableError extends Error {
  override readonly name = 'TraceUnavailableError';
}

export class Tracer {
  /** For `ServerOptions.tap` when the tap is the source; undefined with eBPF. */
  readonly tap: Tap | undefined;
  readonly kind: 'ebpf' | 'tap';
  /** Where eBPF attached (undefined for the tap). */
  readonly attach: AttachInfo | undefined;
  private readonly decoder: LineDecoder;
  private readonly pipeline: TracePipeline | undefined;
  private readonly write: (text: string) => void;
  /** Wall clock − monotonic clock, in ns; refreshed with every summary tick. */
  private wallOffset = wallOffsetNow();
  /** Flows whose segments are dropped before reassembly (insertion order: oldest first). */
  private readonly ignored = new Set<string>();
  private failures = 0;
  private readonly out: string[] = [];
  private readonly timer: NodeJS.Timeout | undefined;
  private lastPrinted = '';
  private stopped: Promise<void> | undefined;
  /** A replica's own trace: its group and id, for the JSON summary lines. */
  private readonly who: { group: number; replica: number } | undefined;

  private constructor(
    private readonly opts: TracerOptions,
    book: AddressBook,
    private readonly source: EbpfCapture | TapSource,
  ) {
    this.decoder = new LineDecoder(book, { includeClients: opts.includeClients, sender: opts.self });
    this.write = opts.write ?? stdoutWriter();
    const group = opts.replicas.find((r) => r.id === opts.self)?.group;
    this.who = opts.self !== undefined && group !== undefined ? { group, replica: opts.self } : undefined;
    if (source.kind === 'ebpf') {
      this.kind = 'ebpf';
      this.attach = source.info;
      this.tap = undefined;
      const snap = opts.snapLen ?? DEFAULT_SNAP;
      this.pipeline = new TracePipeline({ onFrame: (f) => this.onFrame(f), frames: { maxBodyPrefix: snap, isPlausibleType: isKnownType } });
      this.startEbpf(source, this.pipeline);
    } else {
      this.kind = 'tap';
      this.attach = undefined;
      this.tap = source.tap;
      this.pipeline = undefined;
      source.start((batch) => this.onTapped(batch));
    }
    const every = opts.summaryEveryMs ?? 10_000;
    if (every > 0) {
      this.timer = setInterval(() => {
        this.wallOffset = wallOffsetNow();
        this.printSummary(false);
      }, every);
      this.timer.unref();
    }
  }

  static async start(opts: TracerOptions): Promise<Tracer> {
    const book = new AddressBook(await resolveNames(opts.replicas), { localAddrs: opts.localAddrs, self: opts.self });
    const warn = opts.warn ?? ((line: string) => console.warn(line));
    const snapLen = opts.snapLen ?? DEFAULT_SNAP;
    if (opts.capture !== 'tap') {
      const r = openEbpfCapture({ ifname: opts.iface, ports: opts.ports, snapLen, directions: opts.directions ?? 'both', ...opts.ebpf });
      if (r.ok) return new Tracer(opts, book, r.source);
      if (opts.capture === 'ebpf') throw new TraceUnavailableError(`eBPF capture unavailable (${r.reason})`);
      warn(`trace: eBPF capture unavailable (${r.reason}); using the in-process tap`);
    }
    return new Tracer(opts, book, new TapSource());
  }

  summary(): TraceSummary {
    const src = this.source.stats();
    const native = this.source.kind === 'ebpf' ? this.source.stats() : undefined;
    return {
      source: this.kind,
      ...this.decoder.counters,
      undecodableBytes: this.pipeline?.frameStats.undecodableBytes ?? 0,
      resyncs: this.pipeline?.frameStats.resyncs ?? 0,
      lostBytes: this.pipeline?.reassemblyStats.lostGapBytes ?? 0,
      cutBytes: this.pipeline?.reassemblyStats.snapGapBytes ?? 0,
      drops: src.dropped,
      badRecords: native?.malformed ?? 0,
    };
  }

  /** Delivers everything captured so far, prints the final summary, detaches. Idempotent. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      if (this.timer !== undefined) clearInterval(this.timer);
      await this.source.stop();
      this.pipeline?.flush();
      this.flushLines();
      this.printSummary(true);
      await this.source.close();
    })();
    return this.stopped;
  }

  private startEbpf(source: EbpfCapture, pipeline: TracePipeline): void {
    source.start((batch) => {
      this.guard(() => pipeline.push(this.ignored.size === 0 ? batch : batch.filter((r) => this.keep(r))));
      this.flushLines();
    });
  }

  private onFrame(frame: Frame): void {
    this.guard(() => {
      for (const line of this.decoder.decode(frame)) this.emit(line);
      if (this.decoder.verdict(frame.flow) !== 'hide') return;
      this.ignored.add(frame.flow.key);
      if (this.ignored.size > MAX_IGNORED) this.ignored.delete(this.ignored.values().next().value!);
    });
  }

  /**
   * A bug in decoding must not take the replica down with it: the error is counted as undecodable
   * and reported once on stderr.
   */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.decoder.counters.undecodable++;
      if (this.failures++ === 0) (this.opts.warn ?? console.warn)(`trace: decoding failed (${(e as Error).message}); further failures are counted as undecodable`);
    }
  }

  /** Segments of flows that will show nothing are dropped before reassembly; a SYN starts afresh. */
  private keep(r: SegmentRecord): boolean {
    const k = flowKey(r.src, r.dst);
    if (!this.ignored.has(k)) return true;
    if ((r.flags & TCP_SYN) === 0) return false;
    this.ignored.delete(k);
    return true;
  }

  private onTapped(batch: TappedFrame[]): void {
    for (const t of batch) this.guard(() => this.decoder.decode(t.frame, t).forEach((line) => this.emit(line)));
    this.flushLines();
  }

  private emit(line: TraceLine): void {
    this.opts.onLine?.(line);
    this.out.push(formatLine(line, this.opts.format, line.ts + this.wallOffset));
  }

  private flushLines(): void {
    if (this.out.length === 0) return;
    this.write(`${this.out.join('\n')}\n`);
    this.out.length = 0;
  }

  private printSummary(final: boolean): void {
    const s = this.summary();
    const key = JSON.stringify(s);
    if (!final && key === this.lastPrinted) return;
    this.lastPrinted = key;
    const now = process.hrtime.bigint() + this.wallOffset;
    this.write(`${formatSummaryLine(s, this.opts.format, now, this.opts.label, final, this.who)}\n`);
  }
}

const DEFAULT_SNAP = 4096;
const MAX_IGNORED = 16_384;

/** Writes to stdout; once stdout fails (a closed pipe), lines are dropped instead of crashing the process. */
function stdoutWriter(): (text: string) => void {
  let broken = false;
  process.stdout.on('error', () => (broken = true));
  return (text) => {
    if (!broken) process.stdout.write(text);
  };
}

function wallOffsetNow(): bigint {
  return BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
}

/** Adds the IP addresses of replicas given by host name (best effort: a name that does not resolve stays a name). */
async function resolveNames(replicas: readonly ReplicaAddress[]): Promise<ReplicaAddress[]> {
  const out: ReplicaAddress[] = [...replicas];
  await Promise.all(
    replicas.map(async (r) => {
      const { host, port } = splitHostPort(r.address);
      if (host === 'localhost' || /^[\d.]+$/.test(host) || host.includes(':') || host === '') return;
      try {
        for (const a of await lookup(host, { all: true })) out.push({ ...r, address: a.family === 6 ? `[${a.address}]:${port}` : `${a.address}:${port}` });
      } catch {
        // unresolvable now: the book learns the replica from its HELLO and Raft messages
      }
    }),
  );
  return out;
}
