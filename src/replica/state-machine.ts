// Turns committed Raft entries into the store's commands and the store's results into protocol
// responses. Deterministic: it looks only at the entries (including the leader's timestamp in
// each) and at state built from earlier entries, never at this replica's clock. In a sharded
// cluster it also keeps the group's partition ownership, in log order, and refuses writes to
// partitions the group does not serve at that point of the log (WRONG_GROUP).
import type { Entry } from '../raft/types.ts';
import { EntryType } from '../raft/types.ts';
import type { Partitioner } from '../partition/index.ts';
import type { Command as StoreCommand, CommandResult, KvOp, OpResult } from '../storage/types.ts';
import { STALE_WRITE_MESSAGE, type Request, type Response } from '../wire/index.ts';
import { PartState, applyOwnership, arrivingAt, canServe, emptyOwnership, encodeOwnership, handingOver, type Ownership } from './ownership.ts';
import { HandOffTarget, decodeCommand } from './commands.ts';

/** Sessions unused for this long (log time) are forgotten. */
export const SESSION_TTL_MS = 60 * 60 * 1000;
/** How often (in log indexes) expiry runs; by index so every replica runs it at the same point. */
export const EXPIRY_EVERY = 16_384;
export const OWNERSHIP_META = 'ownership';

/** How each applied entry is answered: a fixed response, or the result of a store command. */
export interface Answer {
  index: number;
  fixed?: Response;
  command?: number;
  request?: Request;
}

export interface Planned {
  commands: StoreCommand[];
  answers: Answer[];
}

export class StateMachine {
  /** undefined: not sharded (one group serves every key). */
  ownership: Ownership | undefined;
  /**
   * Told every key a committed write touches, in log order, as its entry is planned for apply
   * (a hand-off's pre-copy tracks the keys that change after it read them: resharding/source.ts).
   */
  keyWatcher: ((key: Uint8Array) => void) | undefined;
  /**
   * Hand-off entries (imports, purges, activations) that found a partition they name arriving here
   * in another stay than theirs, and left it alone: proposed by a leader deposed mid-wave and back
   * in office after the partition moved away and came back (docs/resharding.md).
   */
  readonly stats = { staleHandOffs: 0 };

  /**
   * The ownership as of the entries whose data the store has made visible: what reads go by.
   * `ownership` moves on when a batch is planned, before the store commits its data; a read
   * released by the previous batch may run in between (the replica plans the next Ready at once),
   * and must not see a partition served whose imported data it cannot see yet.
   */
  private visible: Ownership | undefined;

  constructor(
    readonly group: number,
    private readonly partitioner: Partitioner | undefined,
    ownership: Ownership | undefined,
  ) {
    this.ownership = ownership ?? (partitioner ? emptyOwnership(partitioner.partitions) : undefined);
    this.visible = this.ownership;
  }

  /**
   * The ownership an installed snapshot brings, as of its `index`. None stored (the group had
   * applied no configuration by then) is the constructor's default, the empty ownership of a
   * sharded group: a replica that replayed the same entries has it, and both must decide alike.
   */
  restore(ownership: Ownership | undefined, index: number): void {
    this.ownership = ownership ?? (this.partitioner ? emptyOwnership(this.partitioner.partitions) : undefined);
    this.publish(this.ownership, index);
  }

  /** Through which log index `visible` is (publish never moves it back). */
  private visibleIndex = 0;

  /**
   * The store shows the data of the entries through `index` (an applied batch, or an installed
   * snapshot): reads go by `ownership`, the ownership as of that index. Not the ownership planned
   * so far: the next batch may be planned already, and an activation in it must not be seen
   * before that batch's imports are.
   */
  publish(ownership: Ownership | undefined, index: number): void {
    if (index < this.visibleIndex) return;
    this.visibleIndex = index;
    this.visible = ownership;
  }

  /**
   * What the request path asks about ownership: as of the data its reads see. It may lag the data
   * for a moment (the store's commit is visible before publish runs), which only ever answers
   * WRONG_GROUP for a partition about to be served or serves a leaving one at its frozen data.
   */
  readerOwnership(): { serves: (key: Uint8Array) => boolean; wrongGroup: () => Response; holdsUnserved: () => boolean; handingOver: () => boolean; current: () => unknown } {
    return {
      current: () => this.visible,
      serves: (key) => !this.partitioner || !this.visible || canServe(this.visible, this.partitioner.partitionOf(key)),
      wrongGroup: () => this.wrongGroup(),
      holdsUnserved: () => holdsUnserved(this.visible),
      handingOver: () => (this.visible ? handingOver(this.visible) : false),
    };
  }

  get sharded(): boolean {
    return this.partitioner !== undefined;
  }

  get epoch(): number {
    return this.ownership?.epoch ?? 0;
  }

  partitionOf(key: Uint8Array): number {
    return this.partitioner ? this.partitioner.partitionOf(key) : 0;
  }

  /** Whether the store may hold keys this group does not serve (partitions frozen, dropping or arriving). */
  holdsUnserved(): boolean {
    return holdsUnserved(this.ownership);
  }

  /** Whether this group serves the key at the state planned so far (writes of the batch being planned). */
  serves(key: Uint8Array): boolean {
    if (!this.partitioner || !this.ownership) return true;
    return canServe(this.ownership, this.partitioner.partitionOf(key));
  }

  plan(entries: readonly Entry[]): Planned {
    const commands: StoreCommand[] = [];
    const answers: Answer[] = [];
    for (const e of entries) {
      if (e.type !== EntryType.Normal) continue;
      let cmd;
      try {
        cmd = decodeCommand(e.data);
      } catch {
        continue; // the leader validated it, so only a newer format gets here: skipped the same way everywhere
      }
      switch (cmd.kind) {
        case 'noop':
          break;
        case 'write': {
          const req = cmd.request;
          const ops = toOps(req);
          if (!ops || !('clientId' in req)) break;
          if (!ops.every((op) => op.type === 'set-meta' || this.serves(op.key))) {
            answers.push({ index: e.index, fixed: this.wrongGroup() });
            break;
          }
          // clientId 0: a door that does not retry (e.g. RESP) asks for no exactly-once session.
          if (this.keyWatcher) for (const op of ops) if (op.type !== 'set-meta') this.keyWatcher(op.key);
          const session = req.clientId === 0n ? undefined : { clientId: clientIdBytes(req.clientId), seq: req.seq, time: cmd.timeMs };
          commands.push(session ? { type: 'ops', ops, session } : { type: 'ops', ops });
          answers.push({ index: e.index, command: commands.length - 1, request: req });
          if (e.index % EXPIRY_EVERY === 0) commands.push({ type: 'expire-sessions', before: cmd.timeMs - SESSION_TTL_MS });
          break;
        }
        case 'ownership': {
          const change = cmd.change;
          const before = this.ownership;
          if (change.type === 'activate' && before && change.partitions.some((p) => before.state[p] === PartState.Arriving && !arrivingAt(before, p, change.arrivedAt))) {
            this.stats.staleHandOffs++; // left arriving: the activation is for an earlier stay
          }
          const base = this.ownership ?? emptyOwnership(change.type === 'epoch' ? change.config.partitions : 0);
          this.ownership = applyOwnership(base, change);
          commands.push({ type: 'ops', ops: [{ type: 'set-meta', name: OWNERSHIP_META, value: encodeOwnership(this.ownership) }] });
          break;
        }
        case 'import': {
          // Checked when applied, like writes: a hand-off entry proposed from a stale view (a new
          // leader that had not yet applied its predecessor's activation redoes the wave) must not
          // touch a partition served here by now, or it overwrites acknowledged writes.
          const items = cmd.chunk.items.filter((it) => this.handOffMayTouch(it.key, cmd.target, false));
          if (items.length < cmd.chunk.items.length) this.countStale(cmd.chunk.items.map((it) => it.key), cmd.target);
          if (this.keyWatcher) for (const it of items) this.keyWatcher(it.key);
          commands.push({ type: 'import', items, sessions: cmd.chunk.sessions });
          break;
        }
        case 'purge': {
          const keys = cmd.keys.filter((key) => this.handOffMayTouch(key, cmd.target, true));
          if (keys.length < cmd.keys.length) this.countStale(cmd.keys, cmd.target);
          if (this.keyWatcher) for (const key of keys) this.keyWatcher(key);
          if (keys.length > 0) commands.push({ type: 'ops', ops: keys.map((key): KvOp => ({ type: 'delete', key })) });
          break;
        }
      }
    }
    return { commands, answers };
  }

  /**
   * Whether an import (or, `purge`, a purge) may change this key at the state planned so far: only
   * in a partition arriving here in the stay the entry names (a purge for a drop: in one dropping),
   * never in one served or handed off. `target`: HandOffTarget, or the stay (Ownership.arrivedAt).
   */
  private handOffMayTouch(key: Uint8Array, target: number, purge: boolean): boolean {
    if (!this.partitioner || !this.ownership) return true;
    const p = this.partitioner.partitionOf(key);
    const dropping = this.ownership.state[p] === PartState.Dropping;
    if (target === HandOffTarget.Dropping) return purge && dropping;
    if (target === HandOffTarget.Any) return this.ownership.state[p] === PartState.Arriving || (purge && dropping);
    return arrivingAt(this.ownership, p, target);
  }

  /** Counts an entry that some key's partition left alone because it arrives here in another stay. */
  private countStale(keys: readonly Uint8Array[], target: number): void {
    if (!this.partitioner || !this.ownership || target <= 0) return;
    const own = this.ownership;
    const partitioner = this.partitioner;
    const otherStay = (key: Uint8Array): boolean => {
      const p = partitioner.partitionOf(key);
      return own.state[p] === PartState.Arriving && !arrivingAt(own, p, target);
    };
    if (keys.some(otherStay)) this.stats.staleHandOffs++;
  }

  wrongGroup(): Response {
    return { kind: 'error', error: { code: 'WRONG_GROUP', message: `group ${this.group} does not serve this key at epoch ${this.epoch}`, epoch: this.epoch } };
  }
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
    return { kind: 'error', error: { code: 'BAD_REQUEST', message: STALE_WRITE_MESSAGE } };
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

function holdsUnserved(o: Ownership | undefined): boolean {
  return o?.state.some((s) => s === PartState.Frozen || s === PartState.Dropping || s === PartState.Arriving) ?? false;
}
