// How the admin commands wait for a group that cannot answer yet: a placement or shard group
// without a leader (right after its processes were killed, while they restart and elect), a replica
// that refuses connections because it is restarting, one that has just lost leadership. Each of
// those says "not now", not "no": the request is repeated until it is answered or a stated deadline
// passes, saying on stderr what it waits for. One bounded wait per command, shared by kvs reshard
// and kvs replica, instead of each request's own few seconds.
import { KvsError } from '../client/client.ts';

/** Time as the waiting sees it; tests give a fake one. */
export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
};

export interface Patience {
  /** Give up after this long, counted from the first attempt. */
  timeoutMs: number;
  /** Progress lines (the CLI: stderr); none by default. */
  say?: (line: string) => void;
  /** The flag that sets timeoutMs, named in the error when it runs out (e.g. `--timeout-ms`). */
  flag?: string;
  clock?: Clock;
  /** Pause between attempts (default 250 ms). */
  pauseMs?: number;
}

/** KvsError codes that mean the group could not answer now; the request was not refused. */
const TRANSIENT_CODES = new Set(['NOT_LEADER', 'UNREACHABLE', 'UNAVAILABLE', 'TIMEOUT']);
/** Socket errors of a replica that is down or restarting. */
const TRANSIENT_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH']);

/** Whether `e` says "not now" (no leader yet, nobody listening, leadership moved) rather than "no". */
export function isTransient(e: unknown): boolean {
  if (e instanceof KvsError) return TRANSIENT_CODES.has(e.code);
  if (!(e instanceof Error)) return false;
  // The cluster-level call errors (UnreachableError, ConnectionError) and node's socket errors.
  return e.name === 'UnreachableError' || e.name === 'ConnectionError' || TRANSIENT_ERRNOS.has((e as NodeJS.ErrnoException).code ?? '');
}

function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}

/** A progress line at most this often while the same error repeats. */
const SAY_EVERY_MS = 5000;

/**
 * Runs `attempt` until it resolves, repeating it while it fails with a transient error (isTransient)
 * for up to `p.timeoutMs`. `attempt` gets the time left, to bound its own request by. Any other
 * error is thrown at once; when the time is up, an error naming `what` and the last error.
 */
export async function patiently<T>(what: string, attempt: (leftMs: number) => Promise<T>, p: Patience): Promise<T> {
  const clock = p.clock ?? realClock;
  const start = clock.now();
  const deadline = start + p.timeoutMs;
  let last: string | undefined;
  let saidAt = -Infinity;
  let tries = 0;
  for (;;) {
    tries++;
    try {
      const result = await attempt(Math.max(1, deadline - clock.now()));
      if (last !== undefined) p.say?.(`waited ${seconds(clock.now() - start)} for ${what}`);
      return result;
    } catch (e) {
      if (!isTransient(e)) throw e;
      const message = (e as Error).message;
      const now = clock.now();
      if (now >= deadline) {
        const flag = p.flag ? ` (${p.flag} sets how long)` : '';
        throw new Error(`gave up after ${seconds(now - start)} waiting for ${what}${flag}: ${tries} attempt${tries === 1 ? '' : 's'}, the last failed with: ${message}`);
      }
      if (message !== last || now - saidAt >= SAY_EVERY_MS) {
        p.say?.(`waiting for ${what} (${message}); giving up in ${seconds(deadline - now)}`);
        saidAt = now;
      }
      last = message;
      await clock.sleep(Math.min(p.pauseMs ?? 250, Math.max(0, deadline - now)));
    }
  }
}
