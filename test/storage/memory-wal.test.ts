// The simulator's log keeps what was synced and loses the rest in a crash, like the file log.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryWalDisk } from '../../src/storage/memory-wal.ts';
import type { DiskTiming } from '../../src/storage/memory-env.ts';

/** A hand-driven clock: turns end and syncs complete when the test says so. */
function timing(): DiskTiming & { endTurn(): void; completeSyncs(): void } {
  let turn: (() => void)[] = [];
  let syncs: (() => void)[] = [];
  return {
    afterTurn: (fn) => void turn.push(fn),
    sync: (fn) => void syncs.push(fn),
    endTurn: () => [turn, turn = []][0]!.forEach((f) => f()),
    completeSyncs: () => [syncs, syncs = []][0]!.forEach((f) => f()),
  };
}
const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('memory write-ahead log', () => {
  it('makes records durable when their sync completes, one sync per turn', async () => {
    const disk = new MemoryWalDisk();
    const t = timing();
    const { wal } = disk.open('s', t);
    const done: number[] = [];
    for (const p of ['a', 'b']) {
      const { seq, durable } = wal.append(Buffer.from(p));
      void durable.then(() => done.push(seq));
    }
    t.endTurn();
    const { seq: third, durable } = wal.append(Buffer.from('c'));
    void durable.then(() => done.push(third));
    await flush();
    assert.deepEqual(done, []);
    t.completeSyncs();
    await flush();
    assert.deepEqual(done, [1, 2]);
    assert.deepEqual(disk.records('s').map((r) => r.seq), [1, 2]);
    t.endTurn();
    t.completeSyncs();
    await flush();
    assert.deepEqual(done, [1, 2, 3]);
  });

  it('runs one sync at a time: a sync never makes records appended after it began durable', async () => {
    const disk = new MemoryWalDisk();
    const syncs: (() => void)[] = [];
    const turn: (() => void)[] = [];
    const endTurn = (): void => turn.splice(0).forEach((f) => f());
    const { wal } = disk.open('s', { afterTurn: (fn) => void turn.push(fn), sync: (fn) => void syncs.push(fn) });
    const done: number[] = [];
    const add = (p: string): void => {
      const { seq, durable } = wal.append(Buffer.from(p));
      void durable.then(() => done.push(seq));
    };
    add('a');
    endTurn();
    add('b'); // a second store of the process appends while the first sync runs
    endTurn();
    assert.equal(syncs.length, 1, 'the second waits for the first');
    syncs.shift()!();
    await flush();
    assert.deepEqual(done, [1]);
    assert.deepEqual(disk.records('s').map((r) => r.seq), [1]);
    endTurn();
    syncs.shift()!();
    await flush();
    assert.deepEqual(done, [1, 2]);
  });

  it('loses unsynced records in a crash and silences the dead log', async () => {
    const disk = new MemoryWalDisk();
    const t = timing();
    const { wal } = disk.open('s', t);
    await (async () => {
      const { durable } = wal.append(Buffer.from('kept'));
      t.endTurn();
      t.completeSyncs();
      await durable;
    })();
    let answered = false;
    void wal.append(Buffer.from('lost')).durable.then(() => (answered = true));
    t.endTurn();
    disk.crash();
    t.completeSyncs();
    await flush();
    assert.equal(answered, false);
    const reopened = disk.open('s', timing());
    assert.deepEqual(reopened.records.map((r) => Buffer.from(r.payload).toString()), ['kept']);
    assert.equal(reopened.wal.append(Buffer.from('next')).seq, 2);
  });

  it('continues the sequence after release dropped every record', () => {
    const disk = new MemoryWalDisk();
    const t = timing();
    const { wal } = disk.open('s', t);
    wal.append(Buffer.from('a'));
    wal.append(Buffer.from('b'));
    t.endTurn();
    t.completeSyncs();
    wal.release(2);
    const reopened = disk.open('s', t);
    assert.equal(reopened.records.length, 0);
    assert.equal(reopened.wal.append(Buffer.from('c')).seq, 3);
  });
});
