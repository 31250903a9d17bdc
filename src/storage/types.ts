// The state machine's vocabulary: what the replica asks the store to apply, and what it gets back.

/** One change to the key-value state. Keys are compared bytewise. */
export type KvOp =
  | { type: 'put'; key: Uint8Array; value: Uint8Array }
  | { type: 'delete'; key: Uint8Array }
  /** expected null: the key must be absent. value null: delete on success. */
  | { type: 'cas'; key: Uint8Array; expected: Uint8Array | null; value: Uint8Array | null }
  /** Replica metadata (partition ownership, ...): opaque bytes by name; null removes it. */
  | { type: 'set-meta'; name: string; value: Uint8Array | null };

export type OpResult =
  | { status: 'ok' }
  | { status: 'cas-failed'; current: Uint8Array | null }
  /** The op could not be stored (empty or oversized key); every replica decides the same. */
  | { status: 'rejected'; reason: string };

/** Who sent a command; `time` is the leader's timestamp carried in the log entry. */
export interface SessionStamp {
  clientId: Uint8Array;
  seq: number;
  time: number;
}

export type Command =
  /** Ops applied together; with a session, a retried seq is answered from the cache. */
  | { type: 'ops'; ops: KvOp[]; session?: SessionStamp }
  /** Forget sessions last used before `before` (a log timestamp, never the local clock). */
  | { type: 'expire-sessions'; before: number }
  /**
   * A partition handed over by another group: its pairs, and that group's client sessions as it
   * stores them (merged keeping the higher seq, so retries stay exactly-once across the move).
   */
  | { type: 'import'; items: KeyValue[]; sessions: { clientId: Uint8Array; record: Uint8Array }[] };

export type CommandResult =
  | { outcome: 'applied'; results: OpResult[] }
  /** Same seq as the client's last command: its cached results, nothing re-applied. */
  | { outcome: 'duplicate'; results: OpResult[] }
  /** Older than the client's last command: not applied, result no longer kept. */
  | { outcome: 'stale' };

export interface KeyValue {
  key: Uint8Array;
  value: Uint8Array;
}

export interface SessionInfo {
  seq: number;
  time: number;
}
