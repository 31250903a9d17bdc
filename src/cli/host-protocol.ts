// What `kvs up` and the `kvs host` processes it supervises say to each other over the IPC channel
// of the child process (JSON messages). A host runs the replicas it is told to start, each exactly
// as `kvs server` with the same flags would, and reports every one that has started and every one
// that ends (nothing else: a replica that runs is seen through its own doors).

/** Supervisor → host. */
export type HostCommand =
  /** Start replica `id` with these `kvs server` flags; `label` prefixes its text log lines. */
  | { type: 'start'; id: number; argv: string[]; label: string }
  /** Stop replica `id` as SIGTERM stops `kvs server`: a leader hands leadership over first. */
  | { type: 'stop'; id: number }
  /** Replica `id`, if it leads, hands leadership to replica `to` of its group (leader balancing). */
  | { type: 'lead-away'; id: number; to: number };

/**
 * Host → supervisor: replica `id` started (listens on its doors: it is past the part of a start
 * that fails for a damaged store or a port in use), or is gone: stopped (0), refused its flags
 * (ExitCode.Usage), or failed (1).
 */
export type HostReport = { type: 'started'; id: number } | { type: 'exited'; id: number; code: number; error?: string };

export function isHostCommand(m: unknown): m is HostCommand {
  if (typeof m !== 'object' || m === null) return false;
  const c = m as Record<string, unknown>;
  if (typeof c.id !== 'number' || !Number.isInteger(c.id)) return false;
  if (c.type === 'stop') return true;
  if (c.type === 'lead-away') return typeof c.to === 'number' && Number.isInteger(c.to);
  return c.type === 'start' && Array.isArray(c.argv) && c.argv.every((a) => typeof a === 'string') && typeof c.label === 'string';
}

export function isHostReport(m: unknown): m is HostReport {
  if (typeof m !== 'object' || m === null) return false;
  const r = m as Record<string, unknown>;
  if (typeof r.id !== 'number') return false;
  return r.type === 'started' || (r.type === 'exited' && typeof r.code === 'number');
}
