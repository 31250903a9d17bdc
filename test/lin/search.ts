// Wing & Gong's search with Lowe's memoization (the algorithm Porcupine uses), for one key.
//
// Call and return events sit in one time-ordered linked list. An op may be linearized next if its
// call comes before every remaining return (nothing still open had to happen before it) and the
// model accepts its result; its two events are then unlinked. A depth-first search over these
// choices visits each (set of linearized ops, state) pair once: the cache turns the exponential
// search into one that is usually linear. Pending ops never need to be linearized; success is when
// every completed one is.
import { ANY, mutates, reads, step, type KeyOp } from './model.ts';

export type Verdict = 'ok' | 'illegal' | 'unknown';

export interface SearchResult {
  verdict: Verdict;
  /** Model steps tried; compared against the budget. */
  steps: number;
}

interface Frame {
  /** Ops that may go next, best guess first. */
  cands: number[];
  at: number;
  /** The op whose placement led here (-1 at the root) and the state before it. */
  op: number;
  before: number;
}

/** `initial` may be ANY, with `possible` the values it may stand for (see model.ts). */
export function search(
  ops: readonly KeyOp[],
  initial: number,
  budget: number,
  possible?: ReadonlySet<number>,
): SearchResult {
  const n = ops.length;
  // Event e: op e >> 1; even = call, odd = return. HEAD and TAIL are sentinels.
  const HEAD = 2 * n;
  const TAIL = 2 * n + 1;
  const next = new Int32Array(2 * n + 2);
  const prev = new Int32Array(2 * n + 2);
  linkInTimeOrder(ops, next, prev, HEAD, TAIL);
  // Try ops in order of their interval's midpoint: the likeliest moment of effect. Pending ops last.
  const rank = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const op = ops[i] as KeyOp;
    rank[i] = op.pending ? Infinity : (op.call + op.ret) / 2;
  }
  const { groupOf, members } = twinGroups(ops);

  // The search state: which completed ops are placed (bits, hashed), how many of each group of
  // pending twins are used (counts), the model state, and whether a pending write was just placed.
  const bits = new Uint32Array((n + 31) >>> 5);
  const counts = new Int32Array(members.length);
  const zobrist = zobristKeys(n);
  const memo = new Memo();
  let completedLeft = 0;
  for (const op of ops) if (!op.pending) completedLeft++;
  let state = initial;
  let hash = 0;
  let steps = 0;

  const place = (i: number, sign: 1 | -1): void => {
    const g = groupOf[i] as number;
    if (g >= 0) counts[g] = (counts[g] as number) + sign;
    else {
      bits[i >>> 5] = (bits[i >>> 5] as number) ^ (1 << (i & 31));
      hash = (hash ^ (zobrist[i] as number)) >>> 0;
      completedLeft -= sign;
    }
  };
  /** Ops that may go next. After a pending write, only an op that reads the state may (see below). */
  const candidates = (afterPending: boolean): number[] => {
    const out: number[] = [];
    for (let e = next[HEAD] as number; e !== TAIL && (e & 1) === 0; e = next[e] as number) {
      const i = e >> 1;
      const op = ops[i] as KeyOp;
      const g = groupOf[i] as number;
      if (g >= 0 && members[g]?.[counts[g] as number] !== i) continue;
      if (afterPending && !reads(op)) continue;
      // Partial-order reduction: an op that leaves the state alone (a read, a failed cas) and is
      // legal now can go next without loss of generality — moving it earlier breaks nothing, as
      // no remaining op had to precede it. So it is the only choice. (Not from ANY: there a read
      // pins the state, which can matter to other reads.)
      if (state !== ANY && !mutates(op) && step(state, op, possible) >= 0) return [i];
      out.push(i);
    }
    return out.sort((a, b) => (rank[a] as number) - (rank[b] as number) || a - b);
  };

  const stack: Frame[] = [{ cands: candidates(false), at: 0, op: -1, before: initial }];
  while (completedLeft > 0) {
    const top = stack[stack.length - 1] as Frame;
    if (top.at === top.cands.length) {
      // Every choice from here failed: undo the one that led here.
      stack.pop();
      if (top.op < 0) return { verdict: 'illegal', steps };
      state = top.before;
      place(top.op, -1);
      relink(2 * top.op + 1, next, prev);
      relink(2 * top.op, next, prev);
      continue;
    }
    if (++steps > budget) return { verdict: 'unknown', steps };
    const i = top.cands[top.at++] as number;
    const op = ops[i] as KeyOp;
    const after = step(state, op, possible);
    if (after < 0) continue;
    place(i, 1);
    if (!memo.add(hash, bits, counts, after * 2 + (op.pending ? 1 : 0))) {
      place(i, -1);
      continue;
    }
    stack.push({ cands: [], at: 0, op: i, before: state });
    state = after;
    unlink(2 * i, next, prev);
    unlink(2 * i + 1, next, prev);
    // A pending write is only worth placing right before an op that reads what it wrote: if a
    // blind write (or nothing) came next, dropping the pending one would leave a linearization too.
    (stack[stack.length - 1] as Frame).cands = candidates(op.pending);
  }
  return { verdict: 'ok', steps };
}

/**
 * Symmetry reduction: identical pending ops (same kind and arguments, nothing to check) are
 * interchangeable, so each group is used in call order — any linearization can swap the
 * earlier-called twin into the later one's place. Then only how many of a group are used matters.
 */
function twinGroups(ops: readonly KeyOp[]): { groupOf: Int32Array; members: number[][] } {
  const groupOf = new Int32Array(ops.length).fill(-1);
  const members: number[][] = [];
  const byKey = new Map<string, number>();
  const order = ops.map((_, i) => i).sort((a, b) => (ops[a] as KeyOp).call - (ops[b] as KeyOp).call || a - b);
  for (const i of order) {
    const op = ops[i] as KeyOp;
    if (!op.pending) continue;
    const key = `${op.kind}:${op.value}:${op.expected}`;
    let g = byKey.get(key);
    if (g === undefined) {
      g = members.length;
      byKey.set(key, g);
      members.push([]);
    }
    groupOf[i] = g;
    members[g]?.push(i);
  }
  return { groupOf, members };
}

/**
 * Visited search states. A state is skipped if one with the same placed completed ops and model
 * state, using no more of any twin group, was seen: that one had every option this one has. (If it
 * is still on the search path, this one is its descendant and is covered by it.)
 */
class Memo {
  private readonly table = new Map<number, { bits: Uint32Array; counts: Int32Array; state: number }[]>();

  add(hash: number, bits: Uint32Array, counts: Int32Array, state: number): boolean {
    const key = (hash ^ Math.imul(state + 1, 0x9e3779b1)) >>> 0;
    let bucket = this.table.get(key);
    if (bucket === undefined) {
      bucket = [];
      this.table.set(key, bucket);
    }
    for (const seen of bucket) {
      if (seen.state === state && same(seen.bits, bits) && atMost(seen.counts, counts)) return false;
    }
    bucket.push({ bits: bits.slice(), counts: counts.slice(), state });
    return true;
  }
}

function same(a: Uint32Array, b: Uint32Array): boolean {
  for (let w = 0; w < a.length; w++) if (a[w] !== b[w]) return false;
  return true;
}

function atMost(a: Int32Array, b: Int32Array): boolean {
  for (let g = 0; g < a.length; g++) if ((a[g] as number) > (b[g] as number)) return false;
  return true;
}

/** Calls before returns at equal times: operations that touch are concurrent (the permissive choice). */
function linkInTimeOrder(ops: readonly KeyOp[], next: Int32Array, prev: Int32Array, head: number, tail: number): void {
  const events: number[] = [];
  for (let i = 0; i < ops.length; i++) events.push(2 * i, 2 * i + 1);
  const time = (e: number): number => {
    const op = ops[e >> 1] as KeyOp;
    return e & 1 ? op.ret : op.call;
  };
  events.sort((a, b) => time(a) - time(b) || (a & 1) - (b & 1) || a - b);
  let last = head;
  for (const e of events) {
    next[last] = e;
    prev[e] = last;
    last = e;
  }
  next[last] = tail;
  prev[tail] = last;
}

// Dancing links: an unlinked event keeps its own pointers, so relinking in reverse order restores it.
function unlink(e: number, next: Int32Array, prev: Int32Array): void {
  next[prev[e] as number] = next[e] as number;
  prev[next[e] as number] = prev[e] as number;
}

function relink(e: number, next: Int32Array, prev: Int32Array): void {
  next[prev[e] as number] = e;
  prev[next[e] as number] = e;
}

/** Fixed pseudo-random keys (splitmix32) so a set of operations hashes incrementally by XOR. */
function zobristKeys(n: number): Uint32Array {
  const keys = new Uint32Array(n);
  let s = 0x2545f491;
  for (let i = 0; i < n; i++) {
    s = (s + 0x9e3779b9) | 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    keys[i] = (z ^ (z >>> 16)) >>> 0;
  }
  return keys;
}
