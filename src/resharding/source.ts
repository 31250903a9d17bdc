// The source side of a hand-off: freeze partitions (through this group's log, on its leader) and
// export their data in chunks, from any replica once a read barrier shows the freeze applied.
import type { Replica } from '../replica/replica.ts';
import { NotLeaderError } from '../replica/replica.ts';
import type { StateMachine } from '../replica/state-machine.ts';
import { encodeOwnership as encodeOwnershipCommand } from '../replica/commands.ts';
import { PartState } from '../replica/ownership.ts';
import { walkPartitionKeys, type KeyScanner } from './partition-scan.ts';
import type { ExportChunk, ExportRequest, FreezeRequest } from '../wire/handoff-codec.ts';
import type { KeyValue, Response } from '../wire/index.ts';

export interface SourceStore extends KeyScanner {
  get(key: Uint8Array): Uint8Array | null;
  sessionImages(): { clientId: Uint8Array; record: Uint8Array }[];
}

/**
 * Keys examined per export call at most, so that a call answers well within the caller's deadline
 * even when the wave's keys are sparse; up to it, a call fills its chunk to maxBytes (few, full
 * chunks: few import entries through the destination's log).
 */
const SCAN_BUDGET = 400_000;

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
    const items: KeyValue[] = [];
    let bytes = 0;
    const next = await walkPartitionKeys(
      this.store,
      req.cursor ?? new Uint8Array(0),
      new Set(req.partitions),
      (k) => this.sm.partitionOf(k),
      (key) => {
        if (bytes >= req.maxBytes) return false; // resume here next time
        const value = this.store.get(key);
        if (value === null) return true; // frozen partitions do not change; never expected
        items.push({ key: Buffer.from(key), value: Buffer.from(value) });
        bytes += key.length + value.length;
        return true;
      },
      SCAN_BUDGET,
    );
    return { items, sessions: req.cursor === null ? this.store.sessionImages() : [], next };
  }
}

function error(code: 'UNAVAILABLE' | 'BAD_REQUEST', message: string): Response {
  return { kind: 'error', error: { code, message } };
}
