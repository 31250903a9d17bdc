// What clients put in log entries: one key-value operation tagged with (clientId, seq), so its
// application is deterministic and can be matched to the request; or a liveness probe.

export type OpName = 'put' | 'get' | 'cas' | 'delete';

export type Command =
  | { c: number; s: number; op: OpName; k: string; v?: string; e?: string | null }
  | { probe: number };

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodeCommand(cmd: Command): Uint8Array {
  return enc.encode(JSON.stringify(cmd));
}

/** Null for an empty entry (a leader's no-op). */
export function decodeCommand(data: Uint8Array): Command | null {
  if (data.length === 0) return null;
  return JSON.parse(dec.decode(data)) as Command;
}

/** A read request's context: which client operation and which attempt it is. */
export function encodeReadCtx(clientId: number, seq: number, attempt: number): Uint8Array {
  return enc.encode(`${clientId}:${seq}:${attempt}`);
}

export function decodeReadCtx(ctx: Uint8Array): { clientId: number; seq: number; attempt: number } {
  const [c, s, a] = dec.decode(ctx).split(':').map(Number);
  return { clientId: c ?? -1, seq: s ?? -1, attempt: a ?? -1 };
}
