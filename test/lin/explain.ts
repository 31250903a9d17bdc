// Shrinks a non-linearizable history of one key to a small witness a human can read.
//
// Every step keeps the verdict honest: the witness fails only if the original did.
//  1. Culprit: the shortest prefix (in return order) that already fails; its last op is the culprit.
//     Later ops are relaxed to pending ("may or may not have happened"), which only adds choices.
//  2. Window: cut away the oldest ops. Ops that finished before the cut are replaced by the state
//     they left, ANY (restricted to values they could have written); ops straddling the cut are
//     relaxed. If the window fails from ANY, it fails from the real state. The latest such cut wins.
//  3. Shrink: relax ops inside the window one chunk at a time while it still fails, then drop the
//     relaxed ones altogether (fewer choices: still fails).
import { describeOp, isPending, time, type Operation } from './history.ts';
import { ABSENT, ANY, compileKey, prune, Values } from './model.ts';
import { search } from './search.ts';

export interface Failure {
  key: string;
  /** The operations no order explains, by call time. */
  witness: Operation[];
  /** The first operation, by return time, whose result nothing before it explains. */
  culprit: Operation;
  /** Ops that completed before the window (their effect is folded into an unknown start state). */
  before: number;
  text: string;
}

export function explain(key: string, ops: readonly Operation[], budget: number): Failure {
  let spent = 0;
  /** Whether `window` fails: `relaxed` ops may or may not happen; `cut` ops are folded into ANY. */
  const fails = (window: readonly Operation[], relaxed: ReadonlySet<Operation>, cut: readonly Operation[]): boolean => {
    if (spent > budget * 20) return false; // out of patience: settle for what we have
    const view = window.map((op) => (relaxed.has(op) ? { ...op, ret: Infinity, output: undefined } : op));
    const values = new Values();
    const compiled = compileKey(view, values);
    let initial = ABSENT;
    let possible: Set<number> | undefined;
    if (cut.length > 0) {
      initial = ANY;
      possible = new Set([ABSENT]);
      for (const op of [...cut, ...window.filter((w) => relaxed.has(w))]) {
        if (op.op === 'put' || op.op === 'cas') possible.add(values.id(op.value));
      }
    }
    const r = search(prune(compiled, possible), initial, budget, possible);
    spent += r.steps;
    return r.verdict === 'illegal';
  };

  // 1. Culprit.
  const completed = ops.filter((op) => !isPending(op)).sort((a, b) => (a.ret as number) - (b.ret as number));
  const prefix = (k: number): { window: Operation[]; relaxed: Set<Operation> } => {
    const last = completed[k - 1] as Operation;
    // Pending ops called after every kept op returned can always go last: drop them.
    const window = ops.filter((op) => op.call <= (last.ret as number) && !(isPending(op) && op.op === 'get'));
    return { window, relaxed: new Set(window.filter((op) => isPending(op) || (op.ret as number) > (last.ret as number))) };
  };
  let lo = 1;
  let hi = completed.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const p = prefix(mid);
    if (fails(p.window, p.relaxed, [])) hi = mid;
    else lo = mid + 1;
  }
  const culprit = completed[lo - 1] as Operation;
  const { window: full, relaxed: fullRelaxed } = prefix(lo);

  // 2. Window: cut after the first k completed ops; the culprit must start after all of them end.
  const cutAt = (k: number): { window: Operation[]; relaxed: Set<Operation>; cut: Operation[] } => {
    if (k === 0) return { window: full, relaxed: new Set(fullRelaxed), cut: [] };
    const cut = completed.slice(0, k);
    const edge = cut[k - 1]?.ret as number;
    const inCut = new Set(cut);
    const window = full.filter((op) => !inCut.has(op));
    const relaxed = new Set(window.filter((op) => fullRelaxed.has(op) || op.call <= edge));
    return { window, relaxed, cut };
  };
  let kMax = 0;
  while (kMax < lo - 1 && ((completed[kMax]?.ret as number) < culprit.call)) kMax++;
  let good = 0; // known to fail (k = 0 always does)
  let bad = kMax + 1; // smallest k known to pass, or past the end
  for (let gap = 1; kMax - gap + 1 > good; gap *= 2) {
    const k = kMax - gap + 1;
    const w = cutAt(k);
    if (fails(w.window, w.relaxed, w.cut)) {
      good = k;
      break;
    }
    bad = k;
  }
  while (bad - good > 1) {
    const mid = (good + bad) >>> 1;
    const w = cutAt(mid);
    if (fails(w.window, w.relaxed, w.cut)) good = mid;
    else bad = mid;
  }
  const { window, relaxed, cut } = cutAt(good);

  // 3. Shrink inside the window, in halving chunks.
  const candidates = (): Operation[] => window.filter((op) => !relaxed.has(op) && op !== culprit);
  for (let chunk = Math.max(1, candidates().length >>> 1); ; chunk = Math.max(1, chunk >>> 1)) {
    let changed = false;
    const list = candidates();
    for (let at = 0; at < list.length; at += chunk) {
      const group = list.slice(at, at + chunk);
      for (const op of group) relaxed.add(op);
      if (fails(window, relaxed, cut)) changed = true;
      else for (const op of group) relaxed.delete(op);
    }
    if (chunk === 1 && !changed) break;
  }

  const witness = window.filter((op) => !relaxed.has(op)).sort((a, b) => a.call - b.call);
  const start =
    cut.length === 0
      ? 'starting from an absent key'
      : `starting from whatever state the ${cut.length} operations that completed by @${time(cut[cut.length - 1]?.ret as number)} left`;
  const lines = witness.map((op) => `  ${op === culprit ? '→' : ' '} ${describeOp(op)}`);
  const text =
    `key ${JSON.stringify(key)}: not linearizable. No order of these ${witness.length} operations matches ` +
    `their results, ${start}, whatever the other operations did:\n${lines.join('\n')}\n` +
    `  (→ marks the first result, by return time, that nothing before it explains)`;
  return { key, witness, culprit, before: cut.length, text };
}
