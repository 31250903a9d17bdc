// Talking to one group of replicas, the one way every caller does it (the client library, the smart
// client, and a server relaying a request to another shard group): the leader we know of first for
// writes, replicas that recently left an attempt unanswered last, NOT_LEADER hints followed, and
// transient answers retried with backoff until the deadline. Transient: a replica still starting
// (connection refused), an election in progress (NOT_LEADER without a hint), a configuration being
// loaded or changed (UNAVAILABLE). None of these applied the request, so sending it again is safe.
//
// What is never resent: a request that may have reached a replica and cannot be recognised when it
// comes again (a write without an exactly-once session) — its outcome is unknown, and the caller
// gets TIMEOUT. A write with a session is resent, but if the deadline passes after any attempt may
// have reached a replica without a definitive answer, its outcome is just as unknown: TIMEOUT again,
// never the last transient answer (NOT_LEADER, UNAVAILABLE, unreachable), which would say "not
// applied". This module sits below both the client and the server and imports neither.
import { isStaleWrite, type Response, type WireError } from '../wire/index.ts';

/** A replica could not be asked: refused, reset, or no answer within the attempt's bound. */
export class UnreachableError extends Error {
  override readonly name: string = 'UnreachableError';
  constructor(
    message: string,
    /** The request may have reached the replica (no answer in time, or the connection dropped after it was written). */
    readonly sent = false,
  ) {
    super(message);
  }
}

/** What an answer means for a caller deciding whether to send the request again. */
export type Verdict = 'done' | 'not-leader' | 'wrong-group' | 'retry';

/**
 * The one retry rule. `resendSafe`: a read, or a write with a session (a second copy is answered
 * from the session, never applied twice). NOT_LEADER and UNAVAILABLE say the request was not
 * applied; TIMEOUT says it may have been, so only a resend-safe request tries again.
 */
export function verdictOf(res: Response, resendSafe: boolean): Verdict {
  if (res.kind !== 'error') return 'done';
  return errorVerdict(res.error, resendSafe);
}

export function errorVerdict(e: WireError, resendSafe: boolean): Verdict {
  switch (e.code) {
    case 'NOT_LEADER':
      return 'not-leader';
    case 'WRONG_GROUP':
      return 'wrong-group';
    case 'UNAVAILABLE':
      return 'retry';
    case 'TIMEOUT':
      return resendSafe ? 'retry' : 'done';
    default:
      return 'done';
  }
}

/** Which replicas recently left an attempt unanswered, and how long one attempt may wait. */
export interface AttemptPacing {
  attemptWait(deadline: number): number;
  answered(addr: string): void;
  unanswered(addr: string): void;
  responsiveFirst(addrs: string[]): string[];
}

export interface GroupCall {
  /** The group's replicas (native addresses), in the order to try them when no leader is known. */
  replicas: string[];
  /** The leader learned from earlier calls, if any. */
  leader: string | undefined;
  kind: 'read' | 'write';
  /** A read, or a write with a session: may be sent again after an attempt that may have arrived. */
  resendSafe: boolean;
  deadline: number;
  pacing: AttemptPacing;
  /** One attempt; throws UnreachableError when the replica cannot be asked. */
  send(addr: string, waitMs: number): Promise<Response>;
  /** Learned (or forgotten: undefined) the group's leader. */
  onLeader(addr: string | undefined): void;
  /** Passes over the replicas before giving up (default: until the deadline). */
  passes?: number;
  /** Follow a NOT_LEADER hint to an address outside `replicas` (a client that knows only some replicas). */
  followAnyHint?: boolean;
  /** Ends the call (throwing the signal's reason) before its next attempt or pause: a closed client. */
  signal?: AbortSignal;
}

/** How a group call ended. */
export type GroupOutcome =
  /**
   * An answer to pass on: success, an error not worth retrying, WRONG_GROUP (refresh), or the last
   * transient one when the passes ran out. `doubt`: a write attempt of this call may have arrived
   * without a definitive answer (a caller that retries itself must not report "not applied").
   */
  | { t: 'answer'; res: Response; from: string; doubt?: string }
  /** No replica could be asked at all (`doubt` as above: one may have got the write; `cause`: the last replica's error). */
  | { t: 'unreachable'; message: string; doubt?: string; cause?: string }
  /**
   * A write may have been applied and the call cannot find out: one without a session may have
   * arrived (it must not be sent elsewhere), or the deadline passed with an attempt unanswered.
   */
  | { t: 'unknown'; message: string };

/** Which replicas could not be reached, and the last error (short: at most 6 addresses named). */
export function unreachedMessage(addrs: Iterable<string>, lastError: string): string {
  const all = [...new Set(addrs)];
  const named = all.length > 6 ? `${all.slice(0, 6).join(', ')} and ${all.length - 6} more` : all.join(', ');
  return all.length <= 1 ? lastError : `could not reach ${named} (last error: ${lastError})`; // one: the error names it
}

/**
 * The cause to report after an attempt failed with `latest`: an attempt the deadline cut short (a
 * connect given the last millisecond) says nothing about the replica, so the error seen before it
 * (refused, reset) stays the one reported.
 */
export function reportedCause(earlier: string | undefined, latest: string, deadline: number): string {
  return earlier !== undefined && Date.now() >= deadline ? earlier : latest;
}

/** The message of a write whose outcome is unknown. */
export function unknownOutcome(cause: string): string {
  return `the write may or may not have been applied (${cause})`;
}

/**
 * The least time before the deadline worth another attempt. An answer takes longer than this in
 * practice (a commit, a loaded machine), so an attempt started later mostly goes unanswered, and for
 * a write that turns the definite answer already in hand ("not applied") into "may have applied".
 * The first attempt of a call is made whatever is left.
 */
export const RETRY_FLOOR_MS = 25;

/** Whether there is time for another attempt before `deadline` (RETRY_FLOOR_MS). */
export function timeForRetry(deadline: number): boolean {
  return deadline - Date.now() >= RETRY_FLOOR_MS;
}

/** Sends to the group until an answer worth passing on, the passes run out, or the deadline. */
export async function callGroup(c: GroupCall): Promise<GroupOutcome> {
  let last: GroupOutcome = { t: 'unreachable', message: 'no replica could be reached before the deadline' };
  let answered = false;
  /** Why a write of this call may have been applied without our knowing (an attempt sent and unanswered, or TIMEOUT). */
  let doubt: string | undefined;
  /** The replicas that could not be asked, for the message when none could. */
  const unreached = new Set<string>();
  let leader = c.leader;
  const passes = c.passes ?? Infinity;
  let attempts = 0;
  const mayAttempt = (): boolean => (attempts === 0 ? Date.now() < c.deadline : timeForRetry(c.deadline));
  for (let pass = 0; pass < passes && mayAttempt(); pass++) {
    if (pass > 0) await pause(pass, c.deadline, c.signal);
    c.signal?.throwIfAborted();
    const members = new Set(c.replicas);
    const queue = c.pacing.responsiveFirst(leader !== undefined && c.kind === 'write' ? [leader, ...c.replicas.filter((a) => a !== leader)] : c.replicas);
    const tried = new Set<string>();
    for (let addr = queue.shift(); addr !== undefined && mayAttempt(); addr = queue.shift()) {
      if (tried.has(addr)) continue;
      c.signal?.throwIfAborted();
      tried.add(addr);
      attempts++;
      let res: Response;
      try {
        res = await c.send(addr, c.pacing.attemptWait(c.deadline));
        c.pacing.answered(addr);
      } catch (e) {
        if (!(e instanceof UnreachableError)) throw e;
        c.pacing.unanswered(addr);
        if (leader === addr) c.onLeader((leader = undefined));
        if (e.sent && !c.resendSafe) return { t: 'unknown', message: unknownOutcome(e.message) };
        if (e.sent && c.kind === 'write') doubt = e.message;
        unreached.add(addr);
        const cause = reportedCause(last.t === 'unreachable' ? last.cause : undefined, e.message, c.deadline);
        if (!answered) last = { t: 'unreachable', message: unreachedMessage(unreached, cause), cause };
        continue;
      }
      answered = true;
      const verdict = verdictOf(res, c.resendSafe);
      // Refused as stale, this copy did not apply; but a later write of the session did, and an
      // earlier copy of this one that went unanswered may have applied before it.
      if (doubt !== undefined && isStaleWrite(res)) return { t: 'unknown', message: unknownOutcome(`a later write of this session was applied first; ${doubt}`) };
      if (verdict === 'done' || verdict === 'wrong-group') {
        // Only a write's success proves leadership (any replica serves reads).
        if (c.kind === 'write' && res.kind !== 'error' && leader !== addr) c.onLeader((leader = addr));
        // WRONG_GROUP says "not applied" of this attempt only: an earlier one may have applied.
        return { t: 'answer', res, from: addr, ...(verdict === 'wrong-group' && doubt !== undefined ? { doubt } : {}) };
      }
      last = { t: 'answer', res, from: addr };
      if (c.kind === 'write' && res.kind === 'error' && res.error.code === 'TIMEOUT') doubt = `${addr}: ${res.error.message}`;
      if (verdict === 'not-leader' && res.kind === 'error' && res.error.code === 'NOT_LEADER') {
        const hint = res.error.leaderAddr;
        if (hint && hint !== addr && (members.has(hint) || c.followAnyHint)) {
          if (leader !== hint) c.onLeader((leader = hint));
          if (!tried.has(hint)) queue.unshift(hint); // straight to the leader we were told about
        } else if (leader === addr) {
          c.onLeader((leader = undefined));
        }
      }
    }
  }
  if (doubt === undefined) return last;
  // The deadline passed (or is too near for another attempt) with the write's outcome open; a
  // caller that retries itself carries the doubt on.
  if (!timeForRetry(c.deadline)) return { t: 'unknown', message: unknownOutcome(`no answer before the deadline; ${doubt}`) };
  return { ...last, doubt };
}

/** Backoff between passes, with full jitter, never past the deadline. Capped at 250 ms: an election takes about one election timeout. */
export function pause(attempt: number, deadline: number, signal?: AbortSignal): Promise<void> {
  const cap = Math.min(250, 10 * 2 ** Math.min(attempt, 5));
  const ms = Math.min(Math.random() * cap, Math.max(0, deadline - Date.now()));
  if (signal?.aborted) return Promise.resolve();
  // Cut short by the signal, so a closed client leaves no timer behind.
  return new Promise((r) => {
    const done = (): void => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      r();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
