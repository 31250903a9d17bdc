// The shape of a recorded client history, shared by the checker, the simulator and real-process tests.

export type OpKind = 'get' | 'put' | 'cas' | 'delete';

/** One client operation on one key, as the client saw it. */
export interface Operation {
  clientId: number;
  op: OpKind;
  key: string;
  /** put/cas: the value written. */
  value?: string;
  /** cas: the value the key must hold for the swap to happen (null = absent). */
  expected?: string | null;
  /** get: the value read (null = absent); cas: whether it swapped; put/delete: not checked. */
  output?: string | null | boolean;
  /** When the client sent it. */
  call: number;
  /** When the client got the answer; Infinity or undefined = never (it may or may not have taken effect). */
  ret?: number;
  /** Free text shown in explanations, e.g. which node served it and how. */
  note?: string;
}

export function isPending(op: Operation): boolean {
  return op.ret === undefined || !Number.isFinite(op.ret);
}

/** One readable line, e.g. `[c2] cas k1 "a"→"b" -> true  @10..14`. */
export function describeOp(op: Operation): string {
  const q = (v: string | null | undefined): string => (v === null || v === undefined ? 'nil' : JSON.stringify(v));
  let body: string;
  switch (op.op) {
    case 'get':
      body = `get ${op.key}`;
      break;
    case 'put':
      body = `put ${op.key}=${q(op.value)}`;
      break;
    case 'delete':
      body = `delete ${op.key}`;
      break;
    case 'cas':
      body = `cas ${op.key} ${q(op.expected)}→${q(op.value)}`;
      break;
  }
  const pending = isPending(op);
  let out = '';
  if (pending) out = ' -> ?';
  else if (op.op === 'get') out = ` -> ${q(op.output as string | null | undefined)}`;
  else if (op.op === 'cas') out = ` -> ${String(op.output)}`;
  const ret = pending ? '∞' : time(op.ret as number);
  return `[c${op.clientId}] ${body}${out}  @${time(op.call)}..${ret}${op.note ? `  (${op.note})` : ''}`;
}

/** Integers as they are, fractions to three places. */
export function time(t: number): string {
  return Number.isInteger(t) ? String(t) : t.toFixed(3);
}
