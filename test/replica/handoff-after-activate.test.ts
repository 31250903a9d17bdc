// A hand-off's purges and imports are checked against the partition's state when applied, like
// client writes. Found by the chaos driver (bench/chaos.ts, seeds 5 and 6, 2026-12-07): a
// destination leader killed -9 right after it committed the activation of a wave; its successor had
// not yet applied that activation (a new leader learns what is committed only with its first
// entry), still saw the wave arriving, and redid it (reconciler.ts: receive): it purged the wave's
// keys and imported the source's frozen copy again, through its log, after writes the group had
// accepted and acknowledged for those partitions since the activation. Those writes were lost: later
// reads returned the values from before the hand-off.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EntryType, type Entry } from '../../src/raft/types.ts';
import { createPartitioner } from '../../src/partition/index.ts';
import { HandOffTarget, encodeImport, encodeOwnership, encodePurge, encodeWrite } from '../../src/replica/commands.ts';
import { PartState, emptyOwnership } from '../../src/replica/ownership.ts';
import { StateMachine } from '../../src/replica/state-machine.ts';
import type { Command } from '../../src/storage/types.ts';
import { HEADER_BYTES, encodeRequest, readFrameHeader, type Request } from '../../src/wire/index.ts';
import { encodeExportChunk } from '../../src/wire/handoff-codec.ts';

const b = (s: string): Buffer => Buffer.from(s);

/** The key-value effect of planned commands (puts, deletes, imports), for a plain map. */
function run(data: Map<string, string>, commands: readonly Command[]): void {
  for (const c of commands) {
    if (c.type === 'import') for (const it of c.items) data.set(Buffer.from(it.key).toString(), Buffer.from(it.value).toString());
    if (c.type !== 'ops') continue;
    for (const op of c.ops) {
      if (op.type === 'put') data.set(Buffer.from(op.key).toString(), Buffer.from(op.value).toString());
      if (op.type === 'delete') data.delete(Buffer.from(op.key).toString());
    }
  }
}

describe('state machine: hand-off entries after the activation', () => {
  it('a redone wave\'s purge and import leave a served partition\'s acknowledged writes alone', async () => {
    const PARTITIONS = 16;
    const partitioner = await createPartitioner(PARTITIONS);
    const key = b('k138');
    const p = partitioner.partitionOf(key);
    const own = emptyOwnership(PARTITIONS);
    own.epoch = 2;
    own.state[p] = PartState.Arriving;
    own.peer[p] = 2;
    own.arrivedAt[p] = 2;
    const sm = new StateMachine(4, partitioner, own);

    let index = 0;
    const entry = (data: Uint8Array): Entry => ({ index: ++index, term: 1, type: EntryType.Normal, data });
    const importOf = (value: string): Entry =>
      entry(encodeImport(encodeExportChunk(1, { items: [{ key, value: b(value) }], sessions: [], next: null }).subarray(HEADER_BYTES), 2));
    const put = (value: string): Entry => {
      const req: Request = { op: 'put', key, value: b(value), clientId: 7n, seq: 1 };
      const frame = encodeRequest(0, req);
      return entry(encodeWrite(0, readFrameHeader(frame)!.type, frame.subarray(HEADER_BYTES)));
    };

    const data = new Map<string, string>();
    // The first leader: the source's frozen copy, then the activation.
    run(data, sm.plan([importOf('frozen'), entry(encodeOwnership({ type: 'activate', partitions: [p], arrivedAt: 2 }))]).commands);
    assert.equal(sm.ownership!.state[p], PartState.Serving);
    // A client's write, served here now and acknowledged.
    const write = put('acknowledged');
    const planned = sm.plan([write]);
    assert.equal(planned.answers.find((a) => a.index === write.index)?.fixed, undefined, 'the write is served');
    run(data, planned.commands);
    assert.equal(data.get('k138'), 'acknowledged');
    // The next leader redoes the wave from its stale view: purge, the frozen copy again, activate.
    run(data, sm.plan([entry(encodePurge([key], 2)), importOf('frozen'), entry(encodeOwnership({ type: 'activate', partitions: [p], arrivedAt: 2 }))]).commands);
    assert.equal(data.get('k138'), 'acknowledged', 'the acknowledged write survives the redone wave');
  });

  it('purges and imports still apply to an arriving partition, and purges to a dropping one', async () => {
    const PARTITIONS = 16;
    const partitioner = await createPartitioner(PARTITIONS);
    const key = b('k1');
    const p = partitioner.partitionOf(key);
    const own = emptyOwnership(PARTITIONS);
    own.epoch = 2;
    own.state[p] = PartState.Arriving;
    own.peer[p] = 1;
    const sm = new StateMachine(2, partitioner, own);
    let index = 0;
    const entry = (data: Uint8Array): Entry => ({ index: ++index, term: 1, type: EntryType.Normal, data });
    const data = new Map<string, string>();
    run(data, sm.plan([entry(encodeImport(encodeExportChunk(1, { items: [{ key, value: b('v') }], sessions: [], next: null }).subarray(HEADER_BYTES), HandOffTarget.Any))]).commands);
    assert.equal(data.get('k1'), 'v');
    run(data, sm.plan([entry(encodePurge([key], HandOffTarget.Any))]).commands);
    assert.equal(data.has('k1'), false, 'purged while arriving');
    data.set('k1', 'left');
    sm.ownership!.state[p] = PartState.Dropping;
    run(data, sm.plan([entry(encodePurge([key], HandOffTarget.Dropping))]).commands);
    assert.equal(data.has('k1'), false, 'purged while dropping');
  });
});
