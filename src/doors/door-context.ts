// What every front door is handed: the one request path (the router), the limits, and read-only
// views of the replica for status pages. Plain functions and data, so a door can be started in a
// test against an in-memory executor without a Raft group behind it.
import type { RawRequest } from '../router/router.ts';
import type { Request, Response } from '../wire/index.ts';
import type { Logger } from '../log/logger.ts';

/** The router's contract as the doors see it. */
export interface Executor {
  execute(req: Request, raw: RawRequest): Promise<Response>;
}

export interface DoorLimits {
  maxKeyBytes: number;
  maxValueBytes: number;
}

export interface PeerStatus {
  id: number;
  /** host:port of its native door. */
  address: string;
  /** Leader only: replication progress of this peer. */
  match?: number;
  next?: number;
  state?: string;
  /** Leader only: it said in its last answer that it is blank (see NodeStatus.blank). */
  blank?: boolean;
  /** Whether this replica's link to it is up. */
  connected?: boolean;
}

/** A snapshot of this replica for /v1/status and INFO. */
export interface NodeStatus {
  replicaId: number;
  groupId: number;
  role: string;
  term: number;
  leaderId: number;
  leaderAddr: string;
  commitIndex: number;
  appliedIndex: number;
  firstIndex: number;
  lastIndex: number;
  epoch: number;
  /**
   * Its data directory was replaced (started empty) and it has not caught up with a leader since
   * (docs/raft.md): it votes for no candidate holding entries, and its leader refuses membership
   * changes until it has.
   */
  blank: boolean;
  peers: PeerStatus[];
  uptimeSeconds: number;
  /** Every door of this replica: native, resp, grpc, http, ws → address. */
  endpoints: Record<string, string>;
}

export interface ReadinessResult {
  ready: boolean;
  reason: string;
}

export interface DoorContext {
  executor: Executor;
  limits: DoorLimits;
  status(): NodeStatus;
  /** Keys in this replica's state machine (DBSIZE, INFO keyspace). */
  keyCount(): number;
  ready(): Promise<ReadinessResult>;
  metricsText(): string;
  /** One request answered: door, operation, seconds, outcome ('ok' or an error code). */
  observe(door: string, op: string, seconds: number, outcome: string): void;
  connectionOpened(door: string): void;
  connectionClosed(door: string): void;
  log: Logger;
}

export interface Door {
  readonly name: string;
  /** The bound address (host:port); the port is the real one when 0 was asked for. */
  readonly address: string;
  close(): Promise<void>;
}
