// The sequential model of one key: a register that is either absent or holds a string.
// Values are interned to small integers so states compare and hash cheaply during the search.
import { isPending, type Operation } from './history.ts';

export const ABSENT = 0;
const GET = 0;
const PUT = 1;
const CAS = 2;
const DELETE = 3;

/** An operation of one key, compiled for the search. */
export interface KeyOp {
  /** Position in the per-key list given to compileKey. */
  id: number;
  kind: number;
  /** Value id written by put/cas. */
  value: number;
  /** cas: the value id it requires. */
  expected: number;
  /** get: the value id read; cas: 1 swapped, 0 did not; -1: unknown (pending) or not checked. */
  out: number;
  pending: boolean;
  call: number;
  ret: number;
}

/** Interns values; a value read but never written gets its own id, so it never matches a state. */
export class Values {
  private readonly ids = new Map<string, number>();
  id(v: string | null | undefined): number {
    if (v === null || v === undefined) return ABSENT;
    let id = this.ids.get(v);
    if (id === undefined) {
      id = this.ids.size + 1;
      this.ids.set(v, id);
    }
    return id;
  }
}

export function compileKey(ops: readonly Operation[], values: Values): KeyOp[] {
  return ops.map((op, id) => {
    const pending = isPending(op);
    const kind = op.op === 'get' ? GET : op.op === 'put' ? PUT : op.op === 'cas' ? CAS : DELETE;
    let out = -1;
    if (!pending && kind === GET) out = values.id(op.output as string | null | undefined);
    if (!pending && kind === CAS) out = op.output === true ? 1 : 0;
    return {
      id,
      kind,
      value: kind === PUT || kind === CAS ? values.id(op.value ?? null) : ABSENT,
      expected: kind === CAS ? values.id(op.expected ?? null) : ABSENT,
      out,
      pending,
      call: op.call,
      ret: pending ? Infinity : (op.ret as number),
    };
  });
}

/**
 * A wildcard state: "whatever the earlier, cut-away part of the history left", restricted to the
 * values that part could have written. The first op that looks at it pins it. This over-approximates
 * (a failed cas keeps it unknown), which is the safe direction: a window that fails from ANY fails
 * from every real state.
 */
export const ANY = 0x7ffffffe;

/** The state after `op` runs in `state`, or -1 if the recorded output is impossible there. */
export function step(state: number, op: KeyOp, possible?: ReadonlySet<number>): number {
  if (state === ANY) return stepFromAny(op, possible);
  switch (op.kind) {
    case GET:
      return op.out === -1 || op.out === state ? state : -1;
    case PUT:
      return op.value;
    case DELETE:
      return ABSENT;
    default: {
      const swaps = state === op.expected;
      if (op.out === -1) return swaps ? op.value : state;
      if (swaps !== (op.out === 1)) return -1;
      return swaps ? op.value : state;
    }
  }
}

function stepFromAny(op: KeyOp, possible: ReadonlySet<number> | undefined): number {
  const can = (v: number): boolean => possible === undefined || possible.has(v);
  switch (op.kind) {
    case GET:
      return op.out === -1 ? ANY : can(op.out) ? op.out : -1;
    case PUT:
      return op.value;
    case DELETE:
      return ABSENT;
    default:
      if (op.out === 1) return can(op.expected) ? op.value : -1;
      return ANY; // failed or unknown outcome: stay unknown (pending writers are in `possible`)
  }
}

/** Whether the op can change the state (a read or a failed cas cannot). */
export function mutates(op: KeyOp): boolean {
  return op.kind === PUT || op.kind === DELETE || (op.kind === CAS && op.out !== 0);
}

/** Whether the op's result depends on the state (a put or delete does not). */
export function reads(op: KeyOp): boolean {
  return op.kind === GET || op.kind === CAS;
}

/** The state of every value no operation ever looks for: they all behave alike. */
export const UNSEEN = 0x7fffffff;

/**
 * Shrinks the search without changing the verdict:
 *  - values nobody looks for (no get returned them, no cas expected them) become one value, UNSEEN:
 *    no get accepts any of them and every cas treats them alike, so they are interchangeable;
 *  - pending gets go (no effect, nothing observed);
 *  - pending writes of an unobserved value go, when no cas failed on the key. Placed anywhere, such
 *    a write leaves a state only another write can follow; taking it out of a linearization leaves a
 *    linearization, and a pending op may legally never happen. (A failed cas accepts any state but
 *    one, so with failed cases present the write may matter.)
 *  - a pending write whose value (written by nobody else, and not a possible start state) a completed
 *    op saw must have happened, before that op returned: it becomes completed, with that return time
 *    and an unchecked output. Every linearization already places it so; the search no longer has to
 *    try it everywhere.
 */
export function prune(ops: readonly KeyOp[], possible?: ReadonlySet<number>): KeyOp[] {
  const observed = new Set<number>([ABSENT]);
  const seenBy = new Map<number, number>(); // value -> earliest return of a completed op that saw it
  const writers = new Map<number, number>();
  let failedCas = false;
  for (const op of ops) {
    if (op.kind === GET && op.out !== -1) observed.add(op.out);
    if (op.kind === CAS) observed.add(op.expected);
    if (op.kind === CAS && op.out === 0) failedCas = true;
    if (op.kind === PUT || op.kind === CAS) writers.set(op.value, (writers.get(op.value) ?? 0) + 1);
    const saw = op.pending ? -1 : op.kind === GET ? op.out : op.kind === CAS && op.out === 1 ? op.expected : -1;
    if (saw > 0 && op.ret < (seenBy.get(saw) ?? Infinity)) seenBy.set(saw, op.ret);
  }
  const kept: KeyOp[] = [];
  for (const op of ops) {
    const writes = op.kind === PUT || op.kind === CAS;
    const unseen = writes && !observed.has(op.value);
    if (op.pending && op.kind === GET) continue;
    if (op.pending && unseen && !failedCas) continue;
    const seenAt = writes ? seenBy.get(op.value) : undefined;
    if (op.pending && seenAt !== undefined && writers.get(op.value) === 1 && !possible?.has(op.value)) {
      kept.push({ ...op, pending: false, ret: Math.max(seenAt, op.call) });
      continue;
    }
    kept.push(unseen ? { ...op, value: UNSEEN } : op);
  }
  // The search addresses ops by position.
  return kept.map((op, id) => (op.id === id ? op : { ...op, id }));
}
