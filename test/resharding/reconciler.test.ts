// The destination's reconciler (resharding/reconciler.ts) against a fake replica, store and
// placement: faults found in review (2026-12-07), each a step that a crash or a leader change
// could leave undone or do on a stale view.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Reconciler } from '../../src/resharding/reconciler.ts';
import { StateMachine } from '../../src/replica/state-machine.ts';
import { PartState, applyOwnership, emptyOwnership, type Ownership } from '../../src/replica/ownership.ts';
import { createPartitioner } from '../../src/partition/index.ts';
import { CONFIG_KEY, decodeConfig, encodeConfig, type ClusterConfig } from '../../src/placement/config.ts';
import { ConfigWatcher, type PlacementStore } from '../../src/cluster/config-watcher.ts';
import type { Replica } from '../../src/replica/replica.ts';
import type { KeyScanner } from '../../src/resharding/partition-scan.ts';
import { decodeCommand, encodeOwnership } from '../../src/replica/commands.ts';
import { EntryType } from '../../src/raft/types.ts';
import { HEADER_BYTES, readFrameHeader, type Response } from '../../src/wire/index.ts';
import { HandoffType, decodeExport, encodeExportChunk } from '../../src/wire/handoff-codec.ts';

const P = 8;
const SOURCE = 1;
const DEST = 2;
const group = (id: number): ClusterConfig['groups'][number] => ({ id, replicas: [{ id, address: `127.0.0.1:${9000 + id}` }] });
const epoch1: ClusterConfig = { epoch: 1, partitions: P, loadFactor: 1.25, groups: [group(SOURCE)], owner: Array<number>(P).fill(SOURCE), moves: [] };
/** Epoch 2 moves partitions 0-2 from the source to the destination. */
const epoch2: ClusterConfig = {
  ...epoch1,
  epoch: 2,
  groups: [group(SOURCE), group(DEST)],
  owner: epoch1.owner.map((o, p) => (p < 3 ? DEST : o)),
  moves: [0, 1, 2].map((p) => ({ partition: p, from: SOURCE, to: DEST })),
};

/** The placement group's configuration, updated by compare-and-set as the watcher does. */
function placement(start: ClusterConfig): ConfigWatcher & { updates: number } {
  const w = {
    current: start,
    updates: 0,
    onChange: () => () => {},
    update: (change: (c: ClusterConfig) => ClusterConfig) => {
      const next = change(w.current);
      if (next !== w.current) w.updates++;
      w.current = next;
      return Promise.resolve(next);
    },
  };
  return w as unknown as ConfigWatcher & { updates: number };
}

async function destination(own: Ownership, watcher: ConfigWatcher, replica: Partial<Replica>, store: KeyScanner): Promise<Reconciler> {
  const sm = new StateMachine(DEST, await createPartitioner(P), own);
  return new Reconciler({ replica: { isLeader: true, ...replica } as Replica, sm, watcher, store });
}

describe('the destination reconciler', () => {
  it('completes moves it activated when the leader that activated them stopped before telling placement', async () => {
    let own = applyOwnership(emptyOwnership(P), { type: 'epoch', group: DEST, config: epoch2 });
    own = applyOwnership(own, { type: 'activate', partitions: [0, 1, 2] });
    const watcher = placement(epoch2);
    const r = await destination(own, watcher, { propose: () => Promise.resolve({ kind: 'ok' } as Response), readBarrier: () => Promise.resolve() }, { scanKeys: () => ({ keys: [], more: null }) });
    await r.step();
    r.stop();
    assert.deepEqual(watcher.current!.moves, [], 'the moves are complete');
    assert.equal(watcher.current!.epoch, 3);
    assert.equal(watcher.updates, 1);
  });

  it('leaves moves alone that it has not activated, and moves of its partitions elsewhere', async () => {
    const own = applyOwnership(emptyOwnership(P), { type: 'epoch', group: DEST, config: epoch2 });
    own.state[0] = PartState.Serving; // served, but listed as moving from here to the source
    const onward: ClusterConfig = { ...epoch2, moves: [{ partition: 0, from: DEST, to: SOURCE }] };
    const watcher = placement(onward);
    const r = await destination(own, watcher, { propose: () => Promise.resolve({ kind: 'ok' } as Response), readBarrier: () => Promise.resolve() }, { scanKeys: () => ({ keys: [], more: null }) });
    await (r as unknown as { completeServed(c: ClusterConfig): Promise<boolean> }).completeServed(onward);
    r.stop();
    assert.equal(watcher.updates, 0);
  });

  it('walks the keys to purge only once every committed entry is applied and visible here', async () => {
    // A new leader: its predecessor imported a key whose entry this replica shows only after
    // the read barrier (committed by the new leader's first entry, then applied and visible).
    const own = applyOwnership(emptyOwnership(P), { type: 'epoch', group: DEST, config: epoch2 });
    const sm = new StateMachine(DEST, await createPartitioner(P), own);
    const keyOf0 = Array.from({ length: 100 }, (_, i) => Buffer.from(`k${i}`)).find((k) => sm.partitionOf(k) === 0)!;
    const visible: Buffer[] = [];
    const purged: string[] = [];
    const replica = {
      isLeader: true,
      readBarrier: () => {
        visible.push(keyOf0);
        return Promise.resolve();
      },
      propose: (data: Uint8Array) => {
        const c = decodeCommand(data);
        if (c.kind === 'purge') for (const k of c.keys) purged.push(Buffer.from(k).toString());
        // The pass ends here (next it would ask the source over the network): the purge is what is checked.
        return Promise.resolve({ kind: 'error', error: { code: 'UNAVAILABLE', message: 'stop here' } } as Response);
      },
    };
    const store: KeyScanner = { scanKeys: () => ({ keys: [...visible], more: null }) };
    const r = new Reconciler({ replica: replica as unknown as Replica, sm, watcher: placement(epoch2), store });
    await r.step();
    r.stop();
    assert.ok(purged.includes(keyOf0.toString()), `the key imported by the old leader is purged (purged: ${purged.join(',')})`);
  });

  it('a new leader that has not applied its predecessor\'s activation yet does not redo the wave', async () => {
    // Found by the chaos driver (bench/chaos.ts): the leader that activated partitions 0-2 was
    // killed -9 before telling placement; its successor still showed them arriving until its read
    // barrier applied the activation. Redoing the wave purged and re-imported the source's frozen
    // copy over writes acknowledged since the activation.
    const own = applyOwnership(emptyOwnership(P), { type: 'epoch', group: DEST, config: epoch2 });
    const sm = new StateMachine(DEST, await createPartitioner(P), own);
    const proposed: string[] = [];
    const replica = {
      isLeader: true,
      readBarrier: () => {
        // The predecessor's activation, committed by this leader's first entry, applies now.
        sm.plan([{ index: 5, term: 2, type: EntryType.Normal, data: encodeOwnership({ type: 'activate', partitions: [0, 1, 2] }) }]);
        return Promise.resolve();
      },
      propose: (data: Uint8Array) => {
        proposed.push(decodeCommand(data).kind);
        return Promise.resolve({ kind: 'error', error: { code: 'UNAVAILABLE', message: 'stop here' } } as Response);
      },
    };
    const watcher = placement(epoch2);
    const r = new Reconciler({ replica: replica as unknown as Replica, sm, watcher, store: { scanKeys: () => ({ keys: [], more: null }) } });
    await r.step();
    r.stop();
    assert.deepEqual(proposed, [], 'nothing proposed: no purge or import of the served partitions');
    assert.deepEqual(watcher.current!.moves, [], 'the moves it activated are completed');
  });

  it('a leader that steps down during the hand-off barrier ends the pass instead of waiting forever', async () => {
    // Found in review of e31f47d: reconcile now awaits a barrier before the purge's own barrier.
    // Leadership lost in between made the purge's barrier a follower's ReadIndex to the new
    // leader, which nothing times out: a lost message left the pass, and with it every later pass
    // of this replica (`running` stays set, even once it leads again), waiting forever.
    const own = applyOwnership(emptyOwnership(P), { type: 'epoch', group: DEST, config: epoch2 });
    const sm = new StateMachine(DEST, await createPartitioner(P), own);
    const proposed: string[] = [];
    const replica = {
      isLeader: true,
      readBarrier: (): Promise<void> => {
        if (!replica.isLeader) return new Promise<void>(() => {}); // a follower's ReadIndex, lost
        replica.isLeader = false; // deposed while the barrier waited
        return Promise.resolve();
      },
      propose: (data: Uint8Array) => {
        proposed.push(decodeCommand(data).kind);
        return Promise.resolve({ kind: 'ok' } as Response);
      },
    };
    const r = new Reconciler({ replica: replica as unknown as Replica, sm, watcher: placement(epoch2), store: { scanKeys: () => ({ keys: [], more: null }) } });
    let timer: NodeJS.Timeout | undefined;
    const ended = await Promise.race([r.step().then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 2000)))]);
    clearTimeout(timer);
    r.stop();
    assert.equal(ended, true, 'the pass ends');
    assert.deepEqual(proposed, [], 'nothing proposed by a replica that no longer leads');
    assert.equal(r.stats.errors, 1, 'counted as a failed step, retried by the next leader');
  });

  it('a pass whose partitions went round while it waited for a chunk neither activates them nor completes their new move', async () => {
    // The closing note's gap: a leader deposed while its chunk fetch (up to 15 s) was out, elected
    // again after the wave had been activated by another leader and the partitions had moved away,
    // been dropped and started arriving again (from another source). Its late import and activation
    // applied to the new stay, and it told placement the new move was complete: the new source then
    // dropped the only current copy.
    const OTHER = 3;
    const partitioner = await createPartitioner(P);
    const own = applyOwnership(emptyOwnership(P), { type: 'epoch', group: DEST, config: epoch2 });
    const sm = new StateMachine(DEST, partitioner, own);
    const key = Array.from({ length: 100 }, (_, i) => Buffer.from(`k${i}`)).find((k) => sm.partitionOf(k) === 0)!;
    const wave = [0, 1, 2];
    const withMoves = (epoch: number, from: number, to: number | undefined): ClusterConfig => ({
      ...epoch2,
      epoch,
      groups: [group(SOURCE), group(DEST), group(OTHER)],
      owner: epoch2.owner.map((o, p) => (p < 3 ? (to ?? from) : o)),
      moves: to === undefined ? [] : wave.map((p) => ({ partition: p, from, to })),
    });
    const watcher = placement(epoch2) as ReturnType<typeof placement> & { current: ClusterConfig };
    const data = new Map<string, string>();
    let index = 0;
    const apply = (d: Uint8Array): void => {
      for (const c of sm.plan([{ index: ++index, term: 2, type: EntryType.Normal, data: d }]).commands) {
        if (c.type === 'import') for (const it of c.items) data.set(Buffer.from(it.key).toString(), Buffer.from(it.value).toString());
      }
    };
    const replica = {
      isLeader: true,
      readBarrier: () => Promise.resolve(),
      propose: (d: Uint8Array) => {
        apply(d);
        return Promise.resolve({ kind: 'ok' } as Response);
      },
    };
    const r = new Reconciler({ replica: replica as unknown as Replica, sm, watcher, store: { scanKeys: () => ({ keys: [], more: null }) } });
    // The source: no pre-copy (an older one), the freeze, then the frozen copy, whose answer comes
    // back only after the partitions went round here.
    (r as unknown as { call: (c: ClusterConfig, g: number, encode: (id: number) => Uint8Array) => Promise<{ type: number; body: Uint8Array }> }).call = (_c, _g, encode) => {
      const frame = encode(1);
      if (readFrameHeader(frame)!.type !== HandoffType.Export) return Promise.resolve({ type: 0, body: new Uint8Array(0) });
      if (decodeExport(frame.subarray(HEADER_BYTES)).mode === 'precopy') return Promise.reject(new Error('BAD_REQUEST: no pre-copy here'));
      apply(encodeOwnership({ type: 'activate', partitions: wave }));
      apply(encodeOwnership({ type: 'epoch', group: DEST, config: withMoves(3, DEST, undefined) }));
      apply(encodeOwnership({ type: 'epoch', group: DEST, config: withMoves(4, DEST, OTHER) }));
      apply(encodeOwnership({ type: 'freeze', partitions: wave }));
      apply(encodeOwnership({ type: 'epoch', group: DEST, config: withMoves(5, OTHER, undefined) }));
      apply(encodeOwnership({ type: 'dropped', partitions: wave }));
      watcher.current = withMoves(6, OTHER, DEST);
      apply(encodeOwnership({ type: 'epoch', group: DEST, config: watcher.current }));
      assert.deepEqual(wave.map((p) => sm.ownership!.state[p]), [PartState.Arriving, PartState.Arriving, PartState.Arriving]);
      return Promise.resolve({ type: HandoffType.ExportChunk, body: encodeExportChunk(1, { items: [{ key, value: Buffer.from('first stay') }], sessions: [], next: null }).subarray(HEADER_BYTES) });
    };
    await r.step();
    r.stop();
    assert.deepEqual(wave.map((p) => sm.ownership!.state[p]), [PartState.Arriving, PartState.Arriving, PartState.Arriving], 'still arriving: not activated by the late pass');
    assert.equal(data.has(key.toString()), false, 'the first stay\'s chunk is not imported into the second');
    assert.equal(watcher.updates, 0, 'placement not told');
    assert.deepEqual(watcher.current!.moves.map((m) => m.partition), wave, 'the new moves are still pending');
    assert.equal(r.stats.errors, 1, 'the pass failed; the next one starts the current stay\'s wave');
  });

  // Found in review of ddff334: the check above runs once, before the placement update; the update
  // then completes whatever move of these partitions to this group the configuration it reads lists.
  // That read can come well after this replica last applied its log (a leader deposed meanwhile: a
  // read waits up to the placement client's 2 s, each conflicting CAS reads again): by then another
  // leader may have completed the move, and the partitions gone away and started arriving again.
  // Completing that new move made its source drop the only current copy.
  describe('a placement update that reads a configuration newer than what this replica applied', () => {
    const OTHER = 3;
    const wave = [0, 1, 2];
    const withMoves = (epoch: number, from: number, to: number | undefined): ClusterConfig => ({
      ...epoch2,
      epoch,
      groups: [group(SOURCE), group(DEST), group(OTHER)],
      owner: epoch2.owner.map((o, p) => (p < 3 ? (to ?? from) : o)),
      moves: to === undefined ? [] : wave.map((p) => ({ partition: p, from, to })),
    });
    /** What the group's log holds meanwhile (other leaders' entries), and the configuration at its end. */
    const wentRound = (): { log: Uint8Array[]; config: ClusterConfig } => {
      const config = withMoves(6, OTHER, DEST);
      const log = [
        encodeOwnership({ type: 'epoch', group: DEST, config: withMoves(3, DEST, undefined) }),
        encodeOwnership({ type: 'epoch', group: DEST, config: withMoves(4, DEST, OTHER) }),
        encodeOwnership({ type: 'freeze', partitions: wave }),
        encodeOwnership({ type: 'epoch', group: DEST, config: withMoves(5, OTHER, undefined) }),
        encodeOwnership({ type: 'dropped', partitions: wave }),
        encodeOwnership({ type: 'epoch', group: DEST, config }),
      ];
      return { log, config };
    };

    /**
     * A destination replica leading the group, whose log others extend (`behind`: committed, applied
     * here at its next read barrier), and a placement group whose first read is answered only once
     * the partitions went round (`slowRead`).
     */
    async function setup(own: Ownership): Promise<{ r: Reconciler; sm: StateMachine; stored: () => ClusterConfig; slowRead: () => void; otherWaveDone: () => void; barriers: () => number }> {
      const sm = new StateMachine(DEST, await createPartitioner(P), own);
      let index = 0;
      const apply = (d: Uint8Array): void => void sm.plan([{ index: ++index, term: 2, type: EntryType.Normal, data: d }]);
      const behind: Uint8Array[] = [];
      let stored = encodeConfig(epoch2);
      let slow = false;
      let barriers = 0;
      const store: PlacementStore = {
        get: (key) => {
          assert.equal(key, CONFIG_KEY);
          if (slow) {
            slow = false;
            const round = wentRound();
            behind.push(...round.log);
            stored = encodeConfig(round.config);
          }
          return Promise.resolve(stored);
        },
        cas: (_key, expected, value) => {
          const ok = Buffer.from(expected).equals(Buffer.from(stored));
          if (ok) stored = value;
          return Promise.resolve({ ok });
        },
        close: () => {},
      };
      const watcher = new ConfigWatcher(store);
      await watcher.refresh();
      const replica = {
        isLeader: true,
        readBarrier: () => {
          barriers++;
          for (const d of behind.splice(0)) apply(d);
          return Promise.resolve();
        },
        propose: (d: Uint8Array) => {
          apply(d);
          return Promise.resolve({ kind: 'ok' } as Response);
        },
      };
      const r = new Reconciler({ replica: replica as unknown as Replica, sm, watcher, store: { scanKeys: () => ({ keys: [], more: null }) } });
      // Another group completed its moves: a newer configuration, the same moves of these partitions.
      const otherWaveDone = (): void => void (stored = encodeConfig({ ...epoch2, epoch: 3 }));
      return { r, sm, stored: () => decodeConfig(stored), slowRead: () => (slow = true), otherWaveDone, barriers: () => barriers };
    }

    it('the pass that activated the wave does not complete the partitions\' next move here', async () => {
      const own = applyOwnership(emptyOwnership(P), { type: 'epoch', group: DEST, config: epoch2 });
      const { r, sm, stored, slowRead } = await setup(own);
      const key = Array.from({ length: 100 }, (_, i) => Buffer.from(`k${i}`)).find((k) => sm.partitionOf(k) === 0)!;
      // The source: no pre-copy (an older one), the freeze, the frozen copy; then the activation,
      // after which the placement read is the slow one.
      (r as unknown as { call: (c: ClusterConfig, g: number, encode: (id: number) => Uint8Array) => Promise<{ type: number; body: Uint8Array }> }).call = (_c, _g, encode) => {
        const frame = encode(1);
        if (readFrameHeader(frame)!.type !== HandoffType.Export) return Promise.resolve({ type: 0, body: new Uint8Array(0) });
        if (decodeExport(frame.subarray(HEADER_BYTES)).mode === 'precopy') return Promise.reject(new Error('BAD_REQUEST: no pre-copy here'));
        slowRead();
        return Promise.resolve({ type: HandoffType.ExportChunk, body: encodeExportChunk(1, { items: [{ key, value: Buffer.from('v') }], sessions: [], next: null }).subarray(HEADER_BYTES) });
      };
      await r.step();
      r.stop();
      assert.equal(stored().epoch, 6, 'placement not changed');
      assert.deepEqual(stored().moves, wave.map((p) => ({ partition: p, from: OTHER, to: DEST })), 'the new moves are still pending: their source keeps the data');
      assert.deepEqual(wave.map((p) => sm.ownership!.state[p]), [PartState.Arriving, PartState.Arriving, PartState.Arriving], 'arriving again here');
    });

    it('a leader completing moves activated earlier does not complete the partitions\' next move here', async () => {
      let own = applyOwnership(emptyOwnership(P), { type: 'epoch', group: DEST, config: epoch2 });
      own = applyOwnership(own, { type: 'activate', partitions: wave });
      const { r, sm, stored, slowRead } = await setup(own);
      slowRead();
      await r.step();
      r.stop();
      assert.equal(stored().epoch, 6, 'placement not changed');
      assert.deepEqual(stored().moves, wave.map((p) => ({ partition: p, from: OTHER, to: DEST })), 'the new moves are still pending: their source keeps the data');
      assert.deepEqual(wave.map((p) => sm.ownership!.state[p]), [PartState.Arriving, PartState.Arriving, PartState.Arriving], 'arriving again here');
    });

    it('still completes the moves it serves when the configuration read moved on for other partitions', async () => {
      let own = applyOwnership(emptyOwnership(P), { type: 'epoch', group: DEST, config: epoch2 });
      own = applyOwnership(own, { type: 'activate', partitions: wave });
      const { r, stored, otherWaveDone, barriers } = await setup(own);
      otherWaveDone();
      await r.step();
      r.stop();
      assert.deepEqual(stored().moves, [], 'the moves are complete');
      assert.equal(stored().epoch, 4);
      assert.ok(barriers() > 0, 'confirmed on the group\'s log first: it had not applied epoch 3');
    });
  });
});
