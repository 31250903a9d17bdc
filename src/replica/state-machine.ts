// Turns committed Raft entries into the store's commands and the store's results into protocol
// responses. Deterministic: it looks only at the entries (including the leader's timestamp in
// each), never at this replica's clock.
import type { Entry } from '../raft/types.ts';
import { EntryType } from '../raft/types.ts';
import type { Command, CommandResult, KvOp, OpResult } from '../storage/types.ts';
import type { Request, Response } from '../wire/index.ts';
import { decodeCommand } from './commands.ts';

/** Sessions unused for this long (log time) are forgotten. */
export const SESSION_TTL_MS = 60 * 60 * 1000;
/** How often (in log indexes) expiry runs; by index so every replica runs it at the same point. */
export const EXPIRY_EVERY = 16_384;

export interface Planned {
  commands: Command[];
  /** For each command, the entry index and request it came from (undefined: internal command). */
  origins: ({ index: number; request: Request } | undefined)[];
}

export function planEntries(entries: readonly Entry[]): Planned {
  const commands: Command[] = [];
  const origins: Planned['origins'] = [];
  for (const e of entries) {
    if (e.type !== EntryType.Normal) continue;
    let cmd;
    try {
      cmd = decodeCommand(e.data);
    } catch {
      continue; // undecodable: the leader validated it, so only a newer format can get here; skip the same way everywhere
    }
    if (cmd.kind !== 'write') continue;
    const req = cmd.request;
    const ops = toOps(req);
    if (ops && 'clientId' in req) {
      // clientId 0: a door that does not retry (e.g. RESP) asks for no exactly-once session.
      const session = req.clientId === 0n ? undefined : { clientId: clientIdBytes(req.clientId), seq: req.seq, time: cmd.timeMs };
      commands.push(session ? { type: 'ops', ops, session } : { type: 'ops', ops });
      origins.push({ index: e.index, request: req });
    }
    if (e.index % EXPIRY_EVERY === 0) {
      commands.push({ type: 'expire-sessions', before: cmd.timeMs - SESSION_TTL_MS });
      origins.push(undefined);
    }
  }
  return { commands, origins };
}

function toOps(req: Request): KvOp[] | undefined {
  switch (req.op) {
    case 'put':
      return [{ type: 'put', key: req.key, value: req.value }];
    case 'delete':
      return [{ type: 'delete', key: req.key }];
    case 'cas':
      return [{ type: 'cas', key: req.key, expected: req.expected, value: req.value }];
    case 'batch':
      return req.ops.map((o): KvOp => (o.op === 'put' ? { type: 'put', key: o.key, value: o.value } : { type: 'delete', key: o.key }));
    default:
      return undefined;
  }
}

export function toResponse(req: Request, result: CommandResult): Response {
  if (result.outcome === 'stale') {
    return { kind: 'error', error: { code: 'BAD_REQUEST', message: 'stale write: this client already sent a newer one (seq too old)' } };
  }
  const rejected = result.results.find((r): r is Extract<OpResult, { status: 'rejected' }> => r.status === 'rejected');
  if (rejected) return { kind: 'error', error: { code: 'BAD_REQUEST', message: rejected.reason } };
  if (req.op === 'cas') {
    const r = result.results[0];
    if (r?.status === 'cas-failed') return { kind: 'cas', ok: false, current: r.current };
    return { kind: 'cas', ok: true, current: req.value };
  }
  return { kind: 'ok' };
}

function clientIdBytes(id: bigint): Uint8Array {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(id);
  return b;
}
