// The state machine's transition function, run once per apply batch over the batch's staged view
// (staged-tables.ts), whose writes then join one LMDB transaction. Deterministic: every replica applying the same commands to the same state gets the same results.
import { MAX_STORABLE_KEY_BYTES } from './limits.ts';
import type { StateTables } from './staged-tables.ts';
import type { Command, CommandResult, KvOp, OpResult } from './types.ts';
import { bytesEqual, readU64 } from './bytes.ts';
import { decodeSession } from './session-codec.ts';

export function applyCommands(t: StateTables, commands: readonly Command[]): CommandResult[] {
  return commands.map((c) => {
    switch (c.type) {
      case 'ops':
        return applyOps(t, c);
      case 'expire-sessions':
        return expireSessions(t, c.before);
      case 'import':
        return importPartition(t, c);
    }
  });
}

function importPartition(t: StateTables, c: Extract<Command, { type: 'import' }>): CommandResult {
  for (const { key, value } of c.items) {
    if (!keyProblem(key)) t.putKv(key, value);
  }
  for (const s of c.sessions) {
    if (keyProblem(s.clientId)) continue;
    let incoming;
    try {
      incoming = decodeSession(s.record);
    } catch {
      continue; // every replica skips the same undecodable record
    }
    const mine = t.getSession(s.clientId);
    if (!mine || incoming.seq > mine.seq) t.putSession(s.clientId, incoming);
  }
  return { outcome: 'applied', results: [] };
}

function applyOps(t: StateTables, c: Extract<Command, { type: 'ops' }>): CommandResult {
  const s = c.session;
  if (s) {
    const bad = keyProblem(s.clientId);
    if (bad) return { outcome: 'applied', results: c.ops.map(() => ({ status: 'rejected', reason: `client id: ${bad}` })) };
    const last = t.getSession(s.clientId);
    if (last && s.seq < last.seq) return { outcome: 'stale' };
    if (last && s.seq === last.seq) return { outcome: 'duplicate', results: last.results };
  }
  const results = c.ops.map((op) => applyOp(t, op));
  if (s) t.putSession(s.clientId, { seq: s.seq, time: s.time, results });
  return { outcome: 'applied', results };
}

function applyOp(t: StateTables, op: KvOp): OpResult {
  if (op.type === 'set-meta') {
    const bad = keyProblem(Buffer.from(op.name, 'utf8'));
    if (bad) return { status: 'rejected', reason: `meta name: ${bad}` };
    t.putMeta(op.name, op.value);
    return { status: 'ok' };
  }
  const bad = keyProblem(op.key);
  if (bad) return { status: 'rejected', reason: `key: ${bad}` };
  switch (op.type) {
    case 'put':
      t.putKv(op.key, op.value);
      return { status: 'ok' };
    case 'delete':
      t.deleteKv(op.key);
      return { status: 'ok' };
    case 'cas': {
      const current = t.getKv(op.key);
      const matches = op.expected === null ? current === null : current !== null && bytesEqual(current, op.expected);
      if (!matches) return { status: 'cas-failed', current };
      if (op.value === null) t.deleteKv(op.key);
      else t.putKv(op.key, op.value);
      return { status: 'ok' };
    }
  }
}

function expireSessions(t: StateTables, before: number): CommandResult {
  const expired: Uint8Array[] = [];
  for (const { key, body } of t.range('sessions', {})) {
    // time is the second u64 of the record body (see session-codec.ts)
    if (readU64(body, 8) < before) expired.push(key);
  }
  for (const k of expired) t.deleteSession(k);
  return { outcome: 'applied', results: [] };
}

/** Why LMDB could not hold this key, or undefined. A constant of the build, so replicas agree. */
function keyProblem(key: Uint8Array): string | undefined {
  if (key.length === 0) return 'empty';
  if (key.length > MAX_STORABLE_KEY_BYTES) return `${key.length} bytes exceeds ${MAX_STORABLE_KEY_BYTES}`;
  return undefined;
}
