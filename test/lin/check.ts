// Linearizability of a key-value history. Keys are independent registers, and linearizability is
// compositional (P-compositionality): the history is linearizable iff each key's sub-history is.
import type { Operation } from './history.ts';
import { explain, type Failure } from './explain.ts';
import { ABSENT, compileKey, prune, Values } from './model.ts';
import { search, type Verdict } from './search.ts';

export type { Verdict } from './search.ts';
export type { Failure } from './explain.ts';

export interface CheckOptions {
  /** Model steps allowed per key before giving up with 'unknown'. */
  budget?: number;
  /** Shrink a failure to a readable witness (costs extra searches). Default true. */
  explain?: boolean;
}

export interface KeyVerdict {
  key: string;
  verdict: Verdict;
  ops: number;
  steps: number;
}

export interface CheckResult {
  /** 'illegal' if any key is; otherwise 'unknown' if any key ran out of budget; otherwise 'ok'. */
  verdict: Verdict;
  keys: KeyVerdict[];
  /** For the first illegal key (in key order). */
  failure?: Failure;
  /** One paragraph for a test failure message or a simulator report. */
  text: string;
}

export const DEFAULT_BUDGET = 2_000_000;

export function checkHistory(history: readonly Operation[], opts: CheckOptions = {}): CheckResult {
  const budget = opts.budget ?? DEFAULT_BUDGET;
  const byKey = new Map<string, Operation[]>();
  for (const op of history) {
    const list = byKey.get(op.key);
    if (list === undefined) byKey.set(op.key, [op]);
    else list.push(op);
  }

  const keys: KeyVerdict[] = [];
  let failure: Failure | undefined;
  for (const key of [...byKey.keys()].sort()) {
    const ops = byKey.get(key) as Operation[];
    const r = search(prune(compileKey(ops, new Values())), ABSENT, budget);
    keys.push({ key, verdict: r.verdict, ops: ops.length, steps: r.steps });
    if (r.verdict === 'illegal' && failure === undefined && opts.explain !== false) {
      failure = explain(key, ops, budget);
    }
  }

  const verdict: Verdict = keys.some((k) => k.verdict === 'illegal')
    ? 'illegal'
    : keys.some((k) => k.verdict === 'unknown')
      ? 'unknown'
      : 'ok';
  let text = `linearizable (${history.length} operations on ${keys.length} keys)`;
  if (verdict === 'illegal') {
    const bad = keys.filter((k) => k.verdict === 'illegal').map((k) => k.key);
    text = failure?.text ?? `not linearizable on keys ${bad.join(', ')}`;
  } else if (verdict === 'unknown') {
    const slow = keys.filter((k) => k.verdict === 'unknown').map((k) => `${k.key} (${k.ops} ops)`);
    text = `undecided: the search budget of ${budget} steps ran out on ${slow.join(', ')}`;
  }
  return { verdict, keys, ...(failure ? { failure } : {}), text };
}
