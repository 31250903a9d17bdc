// The hand-off's pre-copy and delta (resharding/source.ts): the data copied while the partitions
// are still served, plus the delta once they are frozen, is exactly their data at the freeze; any
// doubt (another leader or term, too many changes, no pre-copy) refuses the delta so the destination
// copies in full. Also the wire forms: the first version's frames still mean what they meant.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EntryType, type Entry } from '../../src/raft/types.ts';
import type { Replica } from '../../src/replica/replica.ts';
import { StateMachine } from '../../src/replica/state-machine.ts';
import { PartState, emptyOwnership } from '../../src/replica/ownership.ts';
import { HandoffSource, type SourceStore } from '../../src/resharding/source.ts';
import { ChangeTracker, MAX_TRACKED_KEYS, decodeTrackedCursor, encodeTrackedCursor } from '../../src/resharding/change-tracker.ts';
import { createPartitioner, type Partitioner } from '../../src/partition/index.ts';
import { HandoffType, decodeExport, decodeExportChunk, encodeExport, encodeExportChunk, removedTail, type ExportChunk, type ExportRequest } from '../../src/wire/handoff-codec.ts';
import { HEADER_BYTES } from '../../src/wire/frame.ts';
import type { Response } from '../../src/wire/index.ts';
import { writeCommand } from '../sim/clients.ts';

const PARTITIONS = 16;
const b = (s: string): Buffer => Buffer.from(s);
const body = (frame: Buffer): Buffer => frame.subarray(HEADER_BYTES);

/** A map store with ordered key scans, as the source reads it. */
class MapStore implements SourceStore {
  readonly data = new Map<string, Buffer>();
  get(key: Uint8Array): Uint8Array | null {
    return this.data.get(Buffer.from(key).toString('latin1')) ?? null;
  }
  sessionImages(): { clientId: Uint8Array; record: Uint8Array }[] {
    return [{ clientId: b('client'), record: b(`sessions-at-${this.data.size}`) }];
  }
  scanKeys(start: Uint8Array, limit: number): { keys: Uint8Array[]; more: Uint8Array | null } {
    const all = [...this.data.keys()].map((k) => Buffer.from(k, 'latin1')).sort(Buffer.compare).filter((k) => Buffer.compare(k, Buffer.from(start)) >= 0);
    return { keys: all.slice(0, limit), more: all.length > limit ? all[limit]! : null };
  }
}

/** The replica as the source sees it: leadership, term, and a read barrier that can be held. */
class FakeReplica {
  isLeader = true;
  leader = 1;
  term = 3;
  get node(): { status: { term: number } } {
    return { status: { term: this.term } };
  }
  readBarrier(): Promise<void> {
    return Promise.resolve();
  }
  propose(): Promise<Response> {
    return Promise.resolve({ kind: 'ok' });
  }
}

interface Rig {
  source: HandoffSource;
  replica: FakeReplica;
  sm: StateMachine;
  store: MapStore;
  p: Partitioner;
  /** A committed write: planned by the state machine (its watcher sees the key), then stored. */
  write(key: string, value: string | null): void;
  /** Keys of partition `partition` among "k0".."k199". */
  keysOf(partition: number): string[];
}

let nextIndex = 1;
async function rig(): Promise<Rig> {
  const p = await createPartitioner(PARTITIONS);
  const own = emptyOwnership(PARTITIONS);
  own.epoch = 2;
  own.state.fill(PartState.Serving);
  const sm = new StateMachine(1, p, own);
  const store = new MapStore();
  const replica = new FakeReplica();
  const source = new HandoffSource(replica as unknown as Replica, sm, store, () => '127.0.0.1:1');
  const write = (key: string, value: string | null): void => {
    const req = value === null ? { op: 'delete' as const, key: b(key), clientId: 0n, seq: 0 } : { op: 'put' as const, key: b(key), value: b(value), clientId: 0n, seq: 0 };
    const entry: Entry = { index: nextIndex, term: 1, type: EntryType.Normal, data: writeCommand(0, req) };
    nextIndex++;
    const planned = sm.plan([entry]);
    assert.equal(planned.commands.length, 1, `the write to ${key} is served`);
    if (value === null) store.data.delete(b(key).toString('latin1'));
    else store.data.set(b(key).toString('latin1'), b(value));
  };
  const keysOf = (partition: number): string[] => Array.from({ length: 200 }, (_, i) => `k${i}`).filter((k) => p.partitionOf(b(k)) === partition);
  return { source, replica, sm, store, p, write, keysOf };
}

/** The destination's attempt (copy id 1 unless said) and round: 0 for the pre-copy, 1 for the first delta. */
function req(partitions: number[], mode: ExportRequest['mode'], cursor: Uint8Array | null = null, maxBytes = 1 << 20, round = mode === 'delta' ? 1 : 0, copy = 1): ExportRequest {
  return { epoch: 2, partitions, cursor, maxBytes, ...(mode ? { mode } : {}), ...(mode && mode !== 'frozen' ? { copy: { id: copy, round } } : {}) };
}

async function chunks(source: HandoffSource, partitions: number[], mode: ExportRequest['mode'], maxBytes = 1 << 20, round?: number, copy?: number): Promise<ExportChunk[]> {
  const out: ExportChunk[] = [];
  let cursor: Uint8Array | null = null;
  do {
    const r = await source.export(req(partitions, mode, cursor, maxBytes, round, copy));
    if ('kind' in r) throw new Error(`${r.kind}: ${r.kind === 'error' ? `${r.error.code} ${r.error.message}` : ''}`);
    out.push(r);
    cursor = r.next;
  } while (cursor !== null);
  return out;
}

function leave(r: Rig, partitions: number[], state: PartState = PartState.Leaving): void {
  for (const p of partitions) r.sm.ownership!.state[p] = state;
}

/** What the destination holds after applying chunks in order: imports, then removals. */
function applyChunks(into: Map<string, string>, list: ExportChunk[]): void {
  for (const c of list) {
    for (const it of c.items) into.set(Buffer.from(it.key).toString(), Buffer.from(it.value).toString());
    for (const k of c.removed ?? []) into.delete(Buffer.from(k).toString());
  }
}

function contentOf(r: Rig, partitions: number[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of r.store.data) if (partitions.includes(r.p.partitionOf(Buffer.from(k, 'latin1')))) out.set(Buffer.from(k, 'latin1').toString(), v.toString());
  return out;
}

describe('hand-off pre-copy and delta', () => {
  it('pre-copy plus delta equals the frozen data, whatever changed in between (puts, overwrites, deletes, re-puts)', async () => {
    for (const seed of [1, 2, 3]) {
      const r = await rig();
      const wave = [2, 5, 11];
      for (let i = 0; i < 200; i++) r.write(`k${i}`, `v${i}`);
      leave(r, wave);
      const dest = new Map<string, string>();
      // The pre-copy runs in small chunks with writes landing between them.
      let cursor: Uint8Array | null = null;
      let step = 0;
      do {
        const c = await r.source.export(req(wave, 'precopy', cursor, 40));
        assert.ok(!('kind' in c), JSON.stringify(c));
        assert.equal(c.sessions.length, 0, 'sessions travel with the delta, not the pre-copy');
        applyChunks(dest, [c]);
        cursor = c.next;
        const k = `k${(step * 37 + seed * 11) % 200}`;
        const op = (step + seed) % 4;
        r.write(k, op === 0 ? null : `w${step}`);
        if (op === 3) r.write(`new${step}`, 'fresh');
        step++;
      } while (cursor !== null);
      // Live delta rounds while still served, with writes during and between them.
      for (let round = 0; round < 2; round++) {
        let c: Uint8Array | null = null;
        let n = 0;
        let roundChunks = 0;
        do {
          const d = await r.source.export(req(wave, 'delta', c, 5, round + 1));
          assert.ok(!('kind' in d), JSON.stringify(d));
          assert.equal(d.sessions.length, 0, 'a live round carries no sessions');
          applyChunks(dest, [d]);
          c = d.next;
          r.write(`k${(n++ * 29 + round + seed) % 200}`, n % 2 === 0 ? null : `round${round}-${n}`);
          roundChunks++;
        } while (c !== null);
        if (round === 0) assert.ok(roundChunks > 1, 'the round was cut into several chunks');
      }
      for (let i = 0; i < 20; i++) r.write(`k${(i * 13 + seed) % 200}`, i % 3 === 0 ? null : `late${i}`); // after the last round, before the freeze
      leave(r, wave, PartState.Frozen);
      const delta = await chunks(r.source, wave, 'delta', 5, 3);
      assert.equal(delta[0]!.sessions.length, 1, 'sessions ride with the first delta chunk');
      applyChunks(dest, delta);
      assert.deepEqual([...dest].sort(), [...contentOf(r, wave)].sort(), `seed ${seed}`);
      // The delta is spent: asking again is refused, so a retried wave copies in full.
      const again = await r.source.export(req(wave, 'delta', null, 1 << 20, 4));
      assert.ok('kind' in again && again.kind === 'error' && again.error.code === 'BAD_REQUEST');
      assert.equal(r.sm.keyWatcher, undefined, 'no tracking is left behind');
    }
  });

  it('the delta holds only what changed, not the partitions again', async () => {
    const r = await rig();
    for (let i = 0; i < 200; i++) r.write(`k${i}`, `v${i}`);
    const wave = [0, 1, 2, 3];
    leave(r, wave);
    const pre = await chunks(r.source, wave, 'precopy');
    const copied = pre.reduce((n, c) => n + c.items.length, 0);
    assert.equal(copied, wave.flatMap((p) => r.keysOf(p)).length);
    const changed = r.keysOf(1).slice(0, 2);
    r.write(changed[0]!, 'new');
    r.write(changed[1]!, null);
    r.write(r.keysOf(7)[0]!, 'another partition: not tracked');
    leave(r, wave, PartState.Frozen);
    const [delta] = await chunks(r.source, wave, 'delta');
    assert.deepEqual(delta!.items.map((it) => Buffer.from(it.key).toString()), [changed[0]]);
    assert.deepEqual((delta!.removed ?? []).map((k) => Buffer.from(k).toString()), [changed[1]]);
  });

  it('refuses a delta after a change of term or leader, without a pre-copy, or while not frozen', async () => {
    const r = await rig();
    for (let i = 0; i < 50; i++) r.write(`k${i}`, `v${i}`);
    const wave = [4, 9];
    leave(r, wave);
    const refused = async (why: RegExp, code = 'BAD_REQUEST'): Promise<void> => {
      const res = await r.source.export(req(wave, 'delta'));
      assert.ok('kind' in res && res.kind === 'error', 'refused');
      assert.equal(res.error.code, code);
      assert.match(res.error.message, why);
    };
    await refused(/no pre-copy/);
    await chunks(r.source, wave, 'precopy');
    for (const p of wave) r.sm.ownership!.state[p] = PartState.Serving;
    await refused(/not handed off/, 'UNAVAILABLE');
    leave(r, wave, PartState.Frozen);
    r.replica.term++; // lost and regained leadership: writes in between may have bypassed the tracker
    await refused(/leadership changed/);
    await chunks(r.source, wave, 'precopy'); // a new pre-copy (of frozen partitions) starts over
    r.replica.isLeader = false;
    await refused(/leader/, 'NOT_LEADER');
    r.replica.isLeader = true;
    assert.equal((await chunks(r.source, wave, 'delta')).length, 1);
    // A pre-copy continued on a replica that did not start it is refused, not resumed.
    const cont = await r.source.export(req(wave, 'precopy', encodeTrackedCursor({ partition: 4, key: b('k1') })));
    assert.ok('kind' in cont && cont.kind === 'error' && cont.error.code === 'BAD_REQUEST');
    // A pre-copy of partitions this group does not hand off waits for the epoch (retried).
    const serving = await r.source.export({ ...req([6], 'precopy') });
    assert.ok('kind' in serving && serving.kind === 'error' && serving.error.code === 'UNAVAILABLE');
  });

  it('a delta round asked again (its answer lost, the request resent) replays that round: nothing is left out', async () => {
    const r = await rig();
    for (let i = 0; i < 200; i++) r.write(`k${i}`, `v${i}`);
    const wave = [3, 8];
    leave(r, wave);
    const dest = new Map<string, string>();
    applyChunks(dest, await chunks(r.source, wave, 'precopy'));
    const [a, gone] = r.keysOf(3);
    r.write(a!, 'changed in round 1');
    r.write(gone!, null);
    await chunks(r.source, wave, 'delta', 1 << 20, 1); // answered, but the answer never arrived
    const b8 = r.keysOf(8)[0]!;
    r.write(b8, 'changed after round 1 began');
    applyChunks(dest, await chunks(r.source, wave, 'delta', 1 << 20, 1)); // the resend
    assert.equal(dest.get(a!), 'changed in round 1');
    assert.equal(dest.has(gone!), false, 'the delete of round 1 arrived');
    applyChunks(dest, await chunks(r.source, wave, 'delta', 1 << 20, 2));
    leave(r, wave, PartState.Frozen);
    applyChunks(dest, await chunks(r.source, wave, 'delta', 1 << 20, 3));
    assert.deepEqual([...dest].sort(), [...contentOf(r, wave)].sort());
    // A round that is neither the last one nor the next is refused (the destination copies in full).
    const r2 = await rig();
    leave(r2, wave);
    await chunks(r2.source, wave, 'precopy');
    const skipped = await r2.source.export(req(wave, 'delta', null, 1 << 20, 2));
    assert.ok('kind' in skipped && skipped.kind === 'error' && /round 2 does not follow round 0/.test(skipped.error.message));
  });

  it('a newer attempt at the wave (a new destination leader) replaces the older one: the old one cannot use up its rounds', async () => {
    const r = await rig();
    for (let i = 0; i < 100; i++) r.write(`k${i}`, `v${i}`);
    const wave = [5];
    leave(r, wave);
    await chunks(r.source, wave, 'precopy', 1 << 20, 0, 1); // the deposed leader's attempt
    const dest = new Map<string, string>();
    applyChunks(dest, await chunks(r.source, wave, 'precopy', 1 << 20, 0, 2)); // the new leader's
    const k = r.keysOf(5)[0]!;
    r.write(k, 'changed');
    const old = await r.source.export(req(wave, 'delta', null, 1 << 20, 1, 1));
    assert.ok('kind' in old && old.kind === 'error' && old.error.code === 'BAD_REQUEST', 'the old attempt is refused');
    const oldContinued = await r.source.export(req(wave, 'precopy', encodeTrackedCursor({ partition: 5, key: b('k1') }), 1 << 20, 0, 1));
    assert.ok('kind' in oldContinued && oldContinued.kind === 'error');
    leave(r, wave, PartState.Frozen);
    applyChunks(dest, await chunks(r.source, wave, 'delta', 1 << 20, 1, 2));
    assert.equal(dest.get(k), 'changed');
    assert.deepEqual([...dest].sort(), [...contentOf(r, wave)].sort());
    // A destination that names no copy (the first version) gets no pre-copy: it copies while frozen.
    const r3 = await rig();
    leave(r3, wave);
    const unnamed = await r3.source.export({ epoch: 2, partitions: wave, cursor: null, maxBytes: 1 << 20, mode: 'precopy' });
    assert.ok('kind' in unnamed && unnamed.kind === 'error' && unnamed.error.code === 'BAD_REQUEST');
  });

  it('a request for an epoch the group has not applied makes it read the configuration now', async () => {
    const p = await createPartitioner(PARTITIONS);
    const own = emptyOwnership(PARTITIONS);
    own.epoch = 2;
    own.state.fill(PartState.Serving);
    const sm = new StateMachine(1, p, own);
    let refreshes = 0;
    const source = new HandoffSource(new FakeReplica() as unknown as Replica, sm, new MapStore(), () => '127.0.0.1:1', Date.now, () => refreshes++);
    // Epoch 2 is what the group has: nothing to learn (the partition is simply not leaving).
    await source.export(req([6], 'precopy'));
    await source.freeze({ epoch: 2, partitions: [6] });
    assert.equal(refreshes, 0);
    // Epoch 3: the destination knows a newer configuration than this process polled so far.
    const early = await source.export({ ...req([6], 'precopy'), epoch: 3 });
    assert.ok('kind' in early && early.kind === 'error' && early.error.code === 'UNAVAILABLE', 'retried later');
    await source.freeze({ epoch: 3, partitions: [6] });
    assert.equal(refreshes, 2);
  });

  it('a tracker that sees too many changes gives up (the delta is then refused)', () => {
    const t = new ChangeTracker(1, [0], () => 0, 0);
    for (let i = 0; i <= MAX_TRACKED_KEYS; i++) t.note(Buffer.from(`key-${i}`));
    assert.equal(t.overflowed, true);
    assert.equal(t.size, 0);
    const u = new ChangeTracker(1, [3, 1], (k) => k[0]! % 4, 0);
    for (const k of [[7, 1], [3, 9], [1, 0], [5, 5], [3, 2], [2, 2]]) u.note(Buffer.from(k));
    u.note(Buffer.from([3, 9])); // twice: once
    assert.equal(u.roundFrom(1, null), undefined, 'no round under way');
    assert.equal(u.startRound(2), false, 'rounds start at 1');
    assert.ok(u.startRound(1));
    const keysOf = (list: { partition: number; key: Uint8Array }[] | undefined): number[][] => (list ?? []).map((t) => [t.partition, ...t.key]);
    assert.deepEqual(keysOf(u.roundFrom(1, null)), [[1, 1, 0], [1, 5, 5], [3, 3, 2], [3, 3, 9], [3, 7, 1]]);
    const from = decodeTrackedCursor(encodeTrackedCursor({ partition: 1, key: Buffer.from([5, 5]) }));
    assert.deepEqual(keysOf(u.roundFrom(1, from)), [[1, 5, 5], [3, 3, 2], [3, 3, 9], [3, 7, 1]]);
    assert.equal(u.roundFrom(2, null), undefined, 'only the last round started is served');
    u.note(Buffer.from([9, 9])); // during the round: for the next one
    assert.ok(u.startRound(2)); // round 1 was not finished: its keys stay, with the new one
    assert.deepEqual(keysOf(u.roundFrom(2, null)), [[1, 1, 0], [1, 5, 5], [1, 9, 9], [3, 3, 2], [3, 3, 9], [3, 7, 1]]);
    u.endRound();
    u.note(Buffer.from([1, 3]));
    assert.ok(u.startRound(2), 'round 2 again: its answer was lost');
    assert.deepEqual(keysOf(u.roundFrom(2, null)), [[1, 1, 0], [1, 5, 5], [1, 9, 9], [3, 3, 2], [3, 3, 9], [3, 7, 1]], 'replayed as it was');
    u.endRound();
    assert.ok(u.startRound(3));
    assert.deepEqual(keysOf(u.roundFrom(3, null)), [[1, 1, 3]], 'a finished round is not sent again; what changed since is');
    assert.equal(u.startRound(1), false, 'an old round is gone');
    assert.throws(() => decodeTrackedCursor(Buffer.from([1])), /at least 4 bytes/);
  });
});

describe('hand-off frames, old and new', () => {
  it('an export request without a mode is a frozen export; modes round-trip; an unknown mode is refused', () => {
    const old = decodeExport(body(encodeExport(1, { epoch: 9, partitions: [1, 2], cursor: null, maxBytes: 100 })));
    assert.deepEqual(old, { epoch: 9, partitions: [1, 2], cursor: null, maxBytes: 100 });
    const named = { epoch: 9, partitions: [3], cursor: null, maxBytes: 7, mode: 'delta' as const, copy: { id: 2 ** 40 + 5, round: 3 } };
    assert.deepEqual(decodeExport(body(encodeExport(1, named))), named, 'copy id and round round-trip');
    const unnamed = encodeExport(1, { ...named, copy: undefined });
    assert.equal(encodeExport(1, named).length - unnamed.length, 12, 'u64 copy and u32 round after the mode');
    assert.throws(() => encodeExport(1, { epoch: 9, partitions: [3], cursor: null, maxBytes: 7, copy: { id: 1, round: 0 } }), /frozen/);
    for (const mode of ['precopy', 'delta'] as const) {
      const r = decodeExport(body(encodeExport(1, { epoch: 9, partitions: [3], cursor: b('c'), maxBytes: 7, mode })));
      assert.equal(r.mode, mode);
      assert.deepEqual(Buffer.from(r.cursor!), b('c'));
    }
    const bad = Buffer.concat([body(encodeExport(1, { epoch: 9, partitions: [], cursor: null, maxBytes: 1 })), Buffer.from([7])]);
    assert.throws(() => decodeExport(bad), /mode 7/);
  });

  it('a chunk with removed keys decodes; without them it is the first version byte for byte; the import leaves the list out', () => {
    const base: ExportChunk = { items: [{ key: b('a'), value: b('1') }], sessions: [{ clientId: b('c'), record: b('r') }], next: b('n') };
    const plain = body(encodeExportChunk(1, base));
    assert.deepEqual(decodeExportChunk(plain), base);
    const removed = [b('x'), b('yy')];
    const withRemoved = body(encodeExportChunk(1, { ...base, removed }));
    assert.deepEqual(decodeExportChunk(withRemoved).removed!.map(String), ['x', 'yy']);
    assert.deepEqual(withRemoved.subarray(0, withRemoved.length - removedTail(removed)), plain);
    assert.equal(HandoffType.ExportChunk, 0x90);
    assert.throws(() => decodeExportChunk(Buffer.concat([plain, Buffer.from([0, 0, 0, 9])])), /removed keys do not fit/);
  });
});
