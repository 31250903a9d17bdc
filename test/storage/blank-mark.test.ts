// The store's blank mark (RaftConfig.blankStart): set when a store is created empty (a founder's
// or a joiner's: a voter whose disk was replaced may come back with --join), kept across restarts until the replica caught up, then removed durably. Before it,
// the server guessed blankStart from an empty data directory, so a replaced replica that crashed
// again before its first entry arrived restarted as a voter that remembers (the simulator's
// blankMarkNotKept seeds lost committed entries so).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { MemoryDisk, openMemoryStore, openReplicaStore, type DiskTiming } from '../../src/storage/index.ts';
import { CONF, tempDir } from './helpers.ts';

const now: DiskTiming = { afterTurn: (fn) => fn(), sync: (fn) => fn() };

test('an empty store is blank across restarts until cleared, a joiner\'s too', async () => {
  const dir = tempDir('blank');
  try {
    const s = openReplicaStore({ path: dir });
    s.load(CONF);
    assert.equal(s.blank, true);
    await s.close();
    const again = openReplicaStore({ path: dir });
    again.load(CONF);
    assert.equal(again.blank, true, 'a restart before it caught up is still blank');
    again.clearBlank();
    again.clearBlank(); // once is enough; again changes nothing
    assert.equal(again.blank, false);
    await again.close();
    const later = openReplicaStore({ path: dir });
    later.load(CONF);
    assert.equal(later.blank, false, 'a store without the mark (or one written before marks) starts as any');
    await later.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const joinerDir = tempDir('blank-join');
  try {
    const j = openReplicaStore({ path: joinerDir });
    j.load({ voters: [], learners: [] });
    assert.equal(j.blank, true, 'a voter replaced and restarted with --join is blank too (found in review)');
    await j.close();
  } finally {
    fs.rmSync(joinerDir, { recursive: true, force: true });
  }
});

test('the mark is written with the store and its removal is durable at once (a crash right after keeps it removed)', () => {
  const disk = new MemoryDisk();
  const s = openMemoryStore(disk.open(now));
  s.load(CONF);
  disk.crash();
  const reopened = openMemoryStore(disk.open(now));
  reopened.load(CONF);
  assert.equal(reopened.blank, true);
  reopened.clearBlank();
  disk.crash();
  const last = openMemoryStore(disk.open(now));
  last.load(CONF);
  assert.equal(last.blank, false);
});
