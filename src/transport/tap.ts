// The in-process tap: the transport reports every inter-replica frame it writes, so tracing works
// where eBPF cannot run (no privileges, no BTF). `frame` is the whole encoded frame, in a buffer of
// its own that the transport never changes afterwards: a tap may keep a view of it for a while.
export type Tap = (from: number, to: number, frame: Uint8Array) => void;
