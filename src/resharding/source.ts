// The source side of a hand-off: freeze partitions (through this group's log, on its leader) and
// export their data in chunks, from any replica once a read barrier shows the freeze applied.
import type { Replica } from '../replica/replica.ts';
import { NotLeaderError } from '../replica/replica.ts';
import type { StateMachine } from '../replica/state-machine.ts';
import { encodeOwnership as encodeOwnershipCommand } from '../replica/commands.ts';
import { PartState } from './ownership.ts';
import type { ExportChunk, ExportRequest, FreezeRequest } from '../wire/handoff-codec.ts';
import type { KeyValue, Response } from '../wire/index.ts';

export interface SourceStore {
  scan(start: Uint8Array, end: Uint8Array | null, limit: number): { items: KeyValue[]; more: Uint8Array | null };
  sessionImages(): { clientId: Uint8Array; record: Uint8Array }[];
}

/** Keys examined per export call at most, so one call never blocks the event loop for long. */
const SCAN_BUDGET = 20_000;

export class HandoffSource {
  constructor(
    private readonly replica: Replica,
    private readonly sm: StateMachine,
    private readonly store: SourceStore,
    private readonly leaderAddress: () => string,
  ) {}

  async freeze(req: FreezeRequest): Promise<Response> {
    const own = this.sm.ownership;
    if (!own) return error('UNAVAILABLE', 'this group is not sharded');
    if (!this.replica.isLeader) return { kind: 'error', error: { code: 'NOT_LEADER', message: 'freeze goes through the leader', leaderId: this.replica.leader, leaderAddr: this.leaderAddress() } };
    const states = req.partitions.map((p) => own.state[p]);
    if (states.some((s) => s === PartState.Serving || s === undefined)) {
      return error('UNAVAILABLE', `group ${this.sm.group} has not applied epoch ${req.epoch} yet`);
    }
    if (states.some((s) => s !== PartState.Leaving && s !== PartState.Frozen)) {
      return error('BAD_REQUEST', `group ${this.sm.group} is not handing off all of ${req.partitions.join(',')}`);
    }
    if (states.some((s) => s === PartState.Leaving)) {
      try {
        await this.replica.propose(encodeOwnershipCommand({ type: 'freeze', partitions: req.partitions }));
      } catch (e) {
        if (e instanceof NotLeaderError) return error('UNAVAILABLE', e.message);
        throw e;
      }
    }
    return { kind: 'ok' };
  }

  /** One chunk of the frozen partitions' pairs, from `cursor`; sessions ride with the first chunk. */
  async export(req: ExportRequest): Promise<ExportChunk | Response> {
    try {
      await this.replica.readBarrier();
    } catch (e) {
      return error('UNAVAILABLE', (e as Error).message);
    }
    const own = this.sm.ownership;
    if (!own || req.partitions.some((p) => own.state[p] !== PartState.Frozen)) {
      return error('UNAVAILABLE', `partitions ${req.partitions.join(',')} are not frozen in group ${this.sm.group}`);
    }
    const wanted = new Set(req.partitions);
    const items: KeyValue[] = [];
    let bytes = 0;
    let from: Uint8Array | null = req.cursor ?? new Uint8Array(0);
    let scanned = 0;
    scan: while (from !== null && scanned < SCAN_BUDGET) {
      const page: { items: KeyValue[]; more: Uint8Array | null } = this.store.scan(from, null, 1000);
      for (const kv of page.items) {
        if (bytes >= req.maxBytes) {
          from = kv.key; // resume here next time
          break scan;
        }
        scanned++;
        if (!wanted.has(this.sm.partitionOf(kv.key))) continue;
        items.push({ key: Buffer.from(kv.key), value: Buffer.from(kv.value) });
        bytes += kv.key.length + kv.value.length;
      }
      from = page.more;
    }
    return { items, sessions: req.cursor === null ? this.store.sessionImages() : [], next: from };
  }
}

function error(code: 'UNAVAILABLE' | 'BAD_REQUEST', message: string): Response {
  return { kind: 'error', error: { code, message } };
}
