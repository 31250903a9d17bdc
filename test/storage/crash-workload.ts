// The deterministic workload of the crash test, shared by the child that writes it and the parent
// that checks what survived: the command of each log index depends only on the index, so the
// expected state machine is a replay of indexes 1..applied.
import type { Command } from '../../src/storage/index.ts';

export const CLIENTS = 7;
export const EXPIRE_EVERY = 1000;
export const SESSION_TTL = 3000;

export function keyOf(index: number): string {
  return `k${(index * 7919) % 1009}`;
}

/** Entry payload: names its index and term, padded to about 100 bytes. */
export function entryData(index: number, term: number): Buffer {
  return Buffer.from(`${index}:${term}:`.padEnd(100, '.'));
}

export function commandsOf(index: number): Command[] {
  const key = Buffer.from(keyOf(index));
  const value = Buffer.from(`v${index}`);
  const session = { clientId: Buffer.from(`c${index % CLIENTS}`), seq: index, time: index };
  const op =
    index % 10 === 0
      ? { type: 'delete' as const, key }
      : index % 10 === 5
        ? { type: 'cas' as const, key, expected: null, value }
        : { type: 'put' as const, key, value };
  const out: Command[] = [{ type: 'ops', ops: [op], session }];
  if (index % EXPIRE_EVERY === 0) out.push({ type: 'expire-sessions', before: index - SESSION_TTL });
  return out;
}

/** The state after applying indexes 1..applied: kv and each client's last seq. */
export function replay(applied: number): { kv: Map<string, string>; sessions: Map<string, number> } {
  const kv = new Map<string, string>();
  const sessions = new Map<string, number>();
  for (let i = 1; i <= applied; i++) {
    const key = keyOf(i);
    if (i % 10 === 0) kv.delete(key);
    else if (i % 10 === 5) {
      if (!kv.has(key)) kv.set(key, `v${i}`);
    } else kv.set(key, `v${i}`);
    sessions.set(`c${i % CLIENTS}`, i);
    if (i % EXPIRE_EVERY === 0) {
      for (const [c, last] of sessions) if (last < i - SESSION_TTL) sessions.delete(c);
    }
  }
  return { kv, sessions };
}
