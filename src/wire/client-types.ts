// The native client protocol as data: what a request and a response can be. Keys and values are
// binary; decoded ones are views into the frame body.

import type { Role } from '../raft/types.ts';

export type Consistency = 'linearizable' | 'stale';

/**
 * Every write names itself by (clientId, seq) so a retried write is applied once: the state machine
 * keeps each client's last seq and result. clientId is a random u64, seq a per-client counter.
 */
export interface WriteId {
  clientId: bigint;
  seq: number;
}

export type BatchOp = { op: 'put'; key: Uint8Array; value: Uint8Array } | { op: 'delete'; key: Uint8Array };

export type Request =
  | { op: 'ping' }
  /**
   * flags: the answer may carry STATUS_INFO's flags byte (blank). A replica of an earlier version
   * refuses the request (BAD_REQUEST: its body had to be empty); without it the answer has no flags.
   */
  | { op: 'status'; flags?: true }
  | { op: 'get'; key: Uint8Array; consistency: Consistency }
  | ({ op: 'put'; key: Uint8Array; value: Uint8Array } & WriteId)
  | ({ op: 'delete'; key: Uint8Array } & WriteId)
  | ({
      op: 'cas';
      key: Uint8Array;
      /** null: succeed only if the key is absent. */
      expected: Uint8Array | null;
      /** null: delete the key on success. */
      value: Uint8Array | null;
    } & WriteId)
  | {
      op: 'scan';
      /** Inclusive; the empty key is the start of the key space. */
      start: Uint8Array;
      /** Exclusive; null: to the end of the key space. */
      end: Uint8Array | null;
      /** Max items in the page; 0: the server's default. */
      limit: number;
      consistency: Consistency;
    }
  | ({ op: 'batch'; ops: BatchOp[] } & WriteId)
  /** How many keys are stored: every group's, summed (the keys a group serves, at a read barrier or stale). */
  | { op: 'count'; consistency: Consistency };

export type RequestOp = Request['op'];

export interface KeyValue {
  key: Uint8Array;
  value: Uint8Array;
}

export const ErrorCode = {
  NOT_LEADER: 1,
  WRONG_GROUP: 2,
  TOO_LARGE: 3,
  TIMEOUT: 4,
  UNAVAILABLE: 5,
  BAD_REQUEST: 6,
} as const;
export type ErrorCodeName = keyof typeof ErrorCode;

export type WireError =
  | {
      code: 'NOT_LEADER';
      message: string;
      /** The leader this replica believes in; 0 when it knows none (retry later, elsewhere). */
      leaderId: number;
      /** host:port of that leader's client door; empty when unknown. */
      leaderAddr: string;
    }
  | {
      code: 'WRONG_GROUP';
      message: string;
      /** The partition-table epoch this replica answered at: refresh to at least this one. */
      epoch: number;
    }
  | { code: 'TOO_LARGE' | 'TIMEOUT' | 'UNAVAILABLE' | 'BAD_REQUEST'; message: string };

export interface StatusInfo {
  replicaId: number;
  groupId: number;
  role: Role;
  term: number;
  /** 0: no known leader. */
  leaderId: number;
  leaderAddr: string;
  commitIndex: number;
  appliedIndex: number;
  /** Partition-table epoch this replica has applied. */
  epoch: number;
  /**
   * Its data directory was replaced and it has not caught up with a leader since (docs/raft.md).
   * Present only in an answer to a STATUS that asked for flags, from a replica that reports it.
   */
  blank?: boolean;
}

export type Response =
  /** put, delete, batch, ping. */
  | { kind: 'ok' }
  /** get: null when the key is absent (not an error). */
  | { kind: 'value'; value: Uint8Array | null }
  /** cas: whether it applied, and the key's value after the operation (null: absent). */
  | { kind: 'cas'; ok: boolean; current: Uint8Array | null }
  /** scan: `more` is the start key of the next page, null when the range is exhausted. */
  | { kind: 'scan'; items: KeyValue[]; more: Uint8Array | null }
  | { kind: 'status'; info: StatusInfo }
  /** count. */
  | { kind: 'count'; count: number }
  | { kind: 'error'; error: WireError };

/**
 * The state machine's answer to a write whose session has applied a later seq already: this copy
 * was not applied (an earlier copy, if one was sent and went unanswered, may have been).
 */
export const STALE_WRITE_MESSAGE = 'stale write: this client already sent a newer one (seq too old)';

export function isStaleWrite(r: Response): boolean {
  return r.kind === 'error' && r.error.code === 'BAD_REQUEST' && r.error.message.startsWith('stale write');
}

