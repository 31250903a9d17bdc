// One seed, start to finish: draw the profile, run the world, check the client history.
import { checkHistory } from '../lin/check.ts';
import { Violation, type Invariant } from './invariants.ts';
import { Rng } from './prng.ts';
import { drawProfile, type Profile, type ProfileTweak } from './profile.ts';
import { Trace } from './trace.ts';
import { World } from './world.ts';

export interface RunOptions {
  /** Fix the cluster size (else 3 or 5, by seed). */
  nodes?: number;
  /** Adjust the drawn profile (mutation tests aim the faults at one bug). */
  tweak?: ProfileTweak;
  /** Keep readable trace lines (in the result), or stream them. */
  trace?: boolean;
  onLine?: (line: string) => void;
  /** Skip the linearizability check (it dominates the cost of long runs). */
  skipLinearizability?: boolean;
}

export interface RunResult {
  seed: number;
  profile: Profile;
  ok: boolean;
  violation?: { invariant: Invariant; detail: string; at: number };
  /** Simulated ticks run, events handled, and the trace digest (same seed, same digest). */
  ticks: number;
  events: number;
  digest: string;
  ops: number;
  pending: number;
  linearizability: 'ok' | 'illegal' | 'unknown' | 'skipped';
  /** Ticks from healing to the first committed proposal. */
  recovery: number;
  stats: Record<string, number>;
  lines?: string[];
}

export async function runSeed(seed: number, opts: RunOptions = {}): Promise<RunResult> {
  const profile = drawProfile(new Rng(seed).fork(), opts.nodes);
  opts.tweak?.(profile, new Rng(seed ^ 0x5bd1e995));
  const trace = new Trace(opts.trace === true || opts.onLine !== undefined, opts.onLine);
  const world = new World(seed, profile, trace);
  let violation: RunResult['violation'];
  let lin: RunResult['linearizability'] = 'skipped';
  try {
    await world.run();
  } catch (err) {
    if (!(err instanceof Violation)) throw err;
    violation = { invariant: err.invariant, detail: err.detail, at: world.now };
    trace.line(world.now, () => `VIOLATION ${err.invariant}: ${err.detail}`);
  }
  const history = world.clients.history;
  if (violation === undefined && !opts.skipLinearizability) {
    const r = checkHistory(history);
    lin = r.verdict;
    if (r.verdict === 'illegal') {
      violation = { invariant: 'linearizability', detail: r.text, at: world.now };
      trace.line(world.now, () => `VIOLATION linearizability: ${r.text}`);
    }
  }
  return {
    seed,
    profile,
    ok: violation === undefined,
    ...(violation ? { violation } : {}),
    ticks: world.now,
    events: trace.events,
    digest: trace.digest,
    ops: history.length,
    pending: world.clients.done.pending,
    linearizability: lin,
    recovery: world.liveAt >= 0 ? world.liveAt - world.healedAt : -1,
    stats: { ...world.stats, ...prefixed('client ', world.clients.done) },
    ...(trace.lines ? { lines: trace.lines } : {}),
  };
}

/** The command that replays a seed with a readable trace; `args` repeats options such as --nodes. */
export function replayCommand(seed: number, args = ''): string {
  return `npm run sim -- --seed ${seed}${args} --trace`;
}

function prefixed(p: string, o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [p + k, v]));
}
