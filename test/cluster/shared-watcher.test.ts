// A ConfigWatcher shared by the replicas of one process: polling ends only when the last holder
// stops; a holder's listener ends with its unsubscribe; sharedPlacementWatcher gives the same
// watcher for the same endpoints (in any order) until it has ended.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigWatcher, type PlacementStore } from '../../src/cluster/config-watcher.ts';
import { sharedPlacementWatcher } from '../../src/client/placement-watcher.ts';
import { CONFIG_KEY, encodeConfig, type ClusterConfig } from '../../src/placement/config.ts';
import { waitFor } from '../support/wait.ts';

function configAt(epoch: number): ClusterConfig {
  return { epoch, partitions: 8, loadFactor: 1.25, groups: [{ id: 1, replicas: [{ id: 101, address: '127.0.0.1:1' }] }], owner: Array<number>(8).fill(1), moves: [] };
}

class FakeStore implements PlacementStore {
  reads = 0;
  closed = false;
  constructor(public config: ClusterConfig) {}
  async get(key: string): Promise<Uint8Array | null> {
    assert.equal(key, CONFIG_KEY);
    this.reads++;
    return encodeConfig(this.config);
  }
  async cas(): Promise<{ ok: boolean }> {
    return { ok: false };
  }
  close(): void {
    this.closed = true;
  }
}

test('a retained watcher polls until its last holder stops; start() twice polls once', async () => {
  const store = new FakeStore(configAt(1));
  const w = new ConfigWatcher(store, 5).retain();
  // Beside it, a watcher started once: polls run on the process's shared timer, so both wake
  // together, and the count compares loops whatever the machine's load (not reads per 60 ms).
  const onceStore = new FakeStore(configAt(1));
  const once = new ConfigWatcher(onceStore, 5);
  w.start();
  w.start();
  once.start();
  await waitFor('a few polls', () => onceStore.reads >= 5, 20_000, 5);
  const reads = store.reads;
  assert.ok(reads >= 3 && reads <= onceStore.reads + 1, `one poll loop, not two: ${reads} reads, ${onceStore.reads} by a watcher started once`);
  once.stop();
  w.stop();
  assert.equal(store.closed, false);
  assert.equal(w.ended, false);
  await waitFor('still polling for the other holder', () => store.reads > reads, 20_000, 5);
  w.stop();
  assert.equal(store.closed, true);
  assert.equal(w.ended, true);
  const after = store.reads;
  await new Promise((r) => setTimeout(r, 30));
  assert.ok(store.reads <= after + 1, 'polling ended');
});

test('an unsubscribed listener hears no newer configuration; the others do', async () => {
  const store = new FakeStore(configAt(1));
  const w = new ConfigWatcher(store, 1000);
  const a: number[] = [];
  const b: number[] = [];
  const offA = w.onChange((c) => a.push(c.epoch));
  w.onChange((c) => b.push(c.epoch));
  await w.refresh();
  offA();
  store.config = configAt(2);
  await w.refresh();
  assert.deepEqual(a, [1]);
  assert.deepEqual(b, [1, 2]);
  w.stop();
});

test('sharedPlacementWatcher: one watcher per endpoint set in this process, a new one once it ended', () => {
  const one = sharedPlacementWatcher(['127.0.0.1:9', '127.0.0.1:8']);
  const two = sharedPlacementWatcher(['127.0.0.1:8', '127.0.0.1:9']);
  const other = sharedPlacementWatcher(['127.0.0.1:7']);
  assert.equal(one, two);
  assert.notEqual(one, other);
  one.stop();
  assert.equal(two.ended, false);
  two.stop();
  assert.equal(two.ended, true);
  const fresh = sharedPlacementWatcher(['127.0.0.1:9', '127.0.0.1:8']);
  assert.notEqual(fresh, one);
  fresh.stop();
  other.stop();
});
