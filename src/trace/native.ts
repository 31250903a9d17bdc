// Locates and loads the native tracer addon (native/) and the BPF object
// (ebpf/). Never throws: a missing build is a reason, not an error.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export interface AttachInfo {
  mode: 'tcx' | 'classic';
  ifindex: number;
  /** Classic filters of dead tracers removed from the interface first. */
  staleRemoved: number;
  /** Classic filters of ours whose owner could not be checked (needs CAP_SYS_ADMIN); left alone. */
  staleUnverified: number;
  ingressProgId: number;
  egressProgId: number;
}

export interface NativeStats {
  delivered: number;
  batches: number;
  dropped: number;
  matched: number;
  emitted: number;
  errors: number;
  malformed: number;
  running: boolean;
  attached: boolean;
  mode?: 'tcx' | 'classic';
}

export interface NativeStartOptions {
  pollMs?: number;
  maxBatchBytes?: number;
  queueDepth?: number;
}

/** Errors from the addon name the failing operation and its errno. */
export interface NativeError extends Error {
  op?: string;
  errno?: number;
  code?: string;
  libbpfLog?: string;
}

export interface NativeTracer {
  open(objPath: string, opts?: { ringBytes?: number }): void;
  attach(ifname: string, opts?: { mode?: 'auto' | 'tcx' | 'classic' }): AttachInfo;
  setPorts(lo: number, hi: number): void;
  setSnapLen(n: number): void;
  /** Bit 0 ingress, bit 1 egress. */
  setDirections(mask: number): void;
  setWakeupBytes(n: number): void;
  start(onBatch: (batch: Buffer, records: number) => void, opts?: NativeStartOptions): void;
  stats(): NativeStats;
  stop(): Promise<void>;
  detach(): Promise<void>;
}

export interface NativeAddon {
  Tracer: new () => NativeTracer;
  maxSnapLen: number;
  recordHeaderBytes: number;
  recordVersion: number;
}

const root = fileURLToPath(new URL('../../', import.meta.url));
export const DEFAULT_ADDON_PATH = process.env.KVS_TRACE_ADDON ?? `${root}native/build/Release/kvs_trace.node`;
export const DEFAULT_BPF_OBJECT_PATH = process.env.KVS_TRACE_BPF_OBJ ?? `${root}ebpf/build/trace.bpf.o`;

/**
 * What to do about a tracer part that is not built. `make trace-build` only works in a source
 * checkout: an installed package ships neither native/ nor ebpf/ (nothing is compiled on install),
 * so there the hint says so instead of naming a command that cannot run there.
 */
export function buildHint(packageRoot = root): string {
  if (existsSync(`${packageRoot}native/binding.gyp`)) return 'run: make trace-build';
  return 'built only in a source checkout of sharded-kvs (make trace-build); the installed package has none';
}

export type LoadResult = { ok: true; addon: NativeAddon } | { ok: false; reason: string };

let cached: LoadResult | undefined;

export function loadAddon(path = DEFAULT_ADDON_PATH): LoadResult {
  if (path === DEFAULT_ADDON_PATH && cached) return cached;
  const result = tryLoad(path);
  if (path === DEFAULT_ADDON_PATH) cached = result;
  return result;
}

function tryLoad(path: string): LoadResult {
  if (process.platform !== 'linux') return { ok: false, reason: `eBPF capture needs Linux (this is ${process.platform})` };
  if (!existsSync(path)) return { ok: false, reason: `native addon not built (${path}; ${buildHint()})` };
  try {
    const addon = createRequire(import.meta.url)(path) as NativeAddon;
    return { ok: true, addon };
  } catch (err) {
    return { ok: false, reason: `native addon failed to load: ${(err as Error).message}` };
  }
}
