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
  /** Raft groups sharing the nodes (each node a process hosting a replica of every group); 1 by default. */
  groups?: number;
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
  profile.groups = opts.groups ?? 1;
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
  // Each group is its own state machine: its clients' history is checked on its own.
  const histories = world.groups.map((g) => g.clients.history);
  if (violation === undefined && !opts.skipLinearizability) {
    lin = 'ok';
    for (const [i, history] of histories.entries()) {
      const r = checkHistory(history);
      if (r.verdict === 'unknown') lin = 'unknown';
      if (r.verdict === 'illegal') {
        const detail = world.groups.length > 1 ? `g${i + 1}: ${r.text}` : r.text;
        lin = 'illegal';
        violation = { invariant: 'linearizability', detail, at: world.now };
        trace.line(world.now, () => `VIOLATION linearizability: ${detail}`);
        break;
      }
    }
  }
  const done: Record<string, number> = {};
  for (const g of world.groups) for (const [k, v] of Object.entries(g.clients.done)) done[k] = (done[k] ?? 0) + v;
  return {
    seed,
    profile,
    ok: violation === undefined,
    ...(violation ? { violation } : {}),
    ticks: world.now,
    events: trace.events,
    digest: trace.digest,
    ops: histories.reduce((n, h) => n + h.length, 0),
    pending: done.pending ?? 0,
    linearizability: lin,
    recovery: world.liveAt >= 0 ? world.liveAt - world.healedAt : -1,
    stats: { ...world.stats, ...prefixed('client ', done) },
    ...(trace.lines ? { lines: trace.lines } : {}),
  };
}

/** The command that replays a seed with a readable trace; `args` repeats options such as --nodes or --groups. */
export function replayCommand(seed: number, args = ''): string {
  return `npm run sim -- --seed ${seed}${args} --trace`;
}

function prefixed(p: string, o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [p + k, v]));
}
