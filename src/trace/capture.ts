// The eBPF segment source: loads the addon if it is built and this process may
// use it, attaches to one interface and delivers parsed records. When any of
// that is impossible it returns the reason, so the caller can fall back to the
// in-process tap with one warning line. Nothing here throws at import time.
import { existsSync } from 'node:fs';
import { missingCapsReason } from './caps.ts';
import {
  DEFAULT_ADDON_PATH,
  buildHint,
  DEFAULT_BPF_OBJECT_PATH,
  loadAddon,
  type AttachInfo,
  type NativeError,
  type NativeStartOptions,
  type NativeStats,
  type NativeTracer,
} from './native.ts';
import { parseBatch } from './record.ts';
import type { SegmentSink, SegmentSource, SourceStats } from './source.ts';

export interface EbpfCaptureOptions {
  ifname: string;
  /** Segments whose source or destination port is in [lo, hi] are captured. */
  ports: readonly [number, number];
  /** Payload bytes kept per segment (default 256, at most the addon's maxSnapLen). */
  snapLen?: number;
  /** On lo every segment passes both; one direction alone sees each once. */
  directions?: 'both' | 'ingress' | 'egress';
  /** tcx links (auto-removed with the process) where the kernel has them, else clsact. */
  mode?: 'auto' | 'tcx' | 'classic';
  ringBytes?: number;
  /** Queued bytes that wake the consumer early; below it the poll interval applies. */
  wakeupBytes?: number;
  delivery?: NativeStartOptions;
  addonPath?: string;
  objPath?: string;
  /** Let the kernel judge privileges instead of the CapEff pre-check. */
  skipCapabilityCheck?: boolean;
}

export type CaptureResult = { ok: true; source: EbpfCapture } | { ok: false; reason: string };

export type EbpfStats = SourceStats & NativeStats;

const DIRECTION_MASK = { ingress: 1, egress: 2, both: 3 } as const;

export class EbpfCapture implements SegmentSource {
  readonly kind = 'ebpf';

  constructor(
    private readonly tracer: NativeTracer,
    readonly info: AttachInfo,
    private readonly delivery: NativeStartOptions = {},
  ) {}

  start(sink: SegmentSink): void {
    this.tracer.start((batch) => sink(parseBatch(batch)), this.delivery);
  }

  stop(): Promise<void> {
    return this.tracer.stop();
  }

  close(): Promise<void> {
    return this.tracer.detach();
  }

  stats(): EbpfStats {
    return this.tracer.stats();
  }
}

/** Why eBPF capture cannot work here, or undefined when it is worth trying. */
export function ebpfUnavailableReason(opts: Partial<EbpfCaptureOptions> = {}): string | undefined {
  const loaded = loadAddon(opts.addonPath ?? DEFAULT_ADDON_PATH);
  if (!loaded.ok) return loaded.reason;
  const obj = opts.objPath ?? DEFAULT_BPF_OBJECT_PATH;
  if (!existsSync(obj)) return `BPF object not built (${obj}; ${buildHint()})`;
  if (!existsSync('/sys/kernel/btf/vmlinux')) return 'kernel has no BTF (/sys/kernel/btf/vmlinux missing)';
  if (!opts.skipCapabilityCheck) return missingCapsReason();
  return undefined;
}

export function openEbpfCapture(opts: EbpfCaptureOptions): CaptureResult {
  const reason = ebpfUnavailableReason(opts);
  if (reason !== undefined) return { ok: false, reason };
  const loaded = loadAddon(opts.addonPath ?? DEFAULT_ADDON_PATH);
  if (!loaded.ok) return loaded;
  const tracer = new loaded.addon.Tracer();
  try {
    tracer.open(opts.objPath ?? DEFAULT_BPF_OBJECT_PATH, opts.ringBytes === undefined ? {} : { ringBytes: opts.ringBytes });
    tracer.setPorts(opts.ports[0], opts.ports[1]);
    tracer.setSnapLen(opts.snapLen ?? 256);
    tracer.setDirections(DIRECTION_MASK[opts.directions ?? 'both']);
    if (opts.wakeupBytes !== undefined) tracer.setWakeupBytes(opts.wakeupBytes);
    const info = tracer.attach(opts.ifname, { mode: opts.mode ?? 'auto' });
    return { ok: true, source: new EbpfCapture(tracer, info, opts.delivery) };
  } catch (err) {
    void tracer.detach().catch(() => undefined);
    return { ok: false, reason: describe(err) };
  }
}

/**
 * The eBPF source when possible; otherwise one warning line and the fallback
 * (the transport's in-process tap).
 */
export function selectSource(
  opts: EbpfCaptureOptions,
  fallback: () => SegmentSource,
  warn: (line: string) => void = (line) => console.warn(line),
): SegmentSource {
  const r = openEbpfCapture(opts);
  if (r.ok) return r.source;
  warn(`trace: eBPF capture unavailable (${r.reason}); using the in-process tap`);
  return fallback();
}

function describe(err: unknown): string {
  const e = err as NativeError;
  if (e?.code === 'EPERM' || e?.code === 'EACCES') {
    return `${e.message} (needs CAP_BPF and CAP_NET_ADMIN, and no lockdown forbidding BPF)`;
  }
  return e instanceof Error ? e.message : String(err);
}
