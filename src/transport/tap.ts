// The in-process tap: the transport reports every inter-replica frame it writes, so tracing works
// where eBPF cannot run (no privileges, no BTF). `frame` is the whole encoded frame.
export type Tap = (from: number, to: number, frame: Uint8Array) => void;
