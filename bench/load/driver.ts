// The contract between the load loop and a protocol driver. The loop owns slots (one per request
// that may be in flight) and timing; a driver turns (slot, op, key) into bytes on a socket and
// reports each answer by slot. Everything is numbers so the hot path allocates nothing per request.
import type { KeySpace } from './keys.ts';
import type { OpKind } from './workload.ts';

export type DoneFn = (slot: number, ok: boolean) => void;

export interface Driver {
  /** Opens connections; resolves when requests can be sent. */
  connect(): Promise<void>;
  /** Sends one request (drivers coalesce the sends of one event-loop turn into one write). */
  send(slot: number, op: OpKind, key: number): void;
  /** Called once per answer, in any order. */
  onDone: DoneFn;
  /** Reads that found no value (a preloaded key space should have none). */
  readonly misses: number;
  /** A short description of the last error answer, for the report. */
  readonly lastError: string;
  close(): Promise<void>;
}

export interface DriverTarget {
  /** Where writes go (the leader, when the system has one); round-robin over these. */
  write: string[];
  /** Where reads go; round-robin over these. */
  read: string[];
  /**
   * Several shard groups, routed on the client side to the group that owns each key (as a smart
   * client does with the partition table). Overrides write/read.
   */
  groups?: { write: string[]; read: string[] }[];
  /** keyGroups[k]: index into groups of the group owning key k (default k % groups.length). */
  keyGroups?: number[];
}

/** Per-key route index, computed once so send() only indexes an array. */
export function keyRoutes(target: DriverTarget, keys: number): Uint8Array {
  const n = target.groups?.length ?? 1;
  const out = new Uint8Array(keys);
  for (let k = 0; k < keys; k++) out[k] = target.keyGroups?.[k] ?? k % n;
  return out;
}

export interface DriverOptions {
  target: DriverTarget;
  space: KeySpace;
  /** Slots this driver will be asked to use: 0 .. slots-1. */
  slots: number;
  /** Connections per endpoint. */
  conns: number;
  /** Native protocol: writes carry (clientId, seq) lanes like KvsClient; false sends clientId 0. */
  sessions: boolean;
  /** Linearizable reads (the default); stale when false. */
  linearizable: boolean;
  /** Distinguishes generator processes (lane client ids must not collide). */
  worker: number;
}

export type DriverFactory = (o: DriverOptions) => Driver;
