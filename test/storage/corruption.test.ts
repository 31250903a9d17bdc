// Damage on disk: flipped bytes, a truncated or missing data file, inconsistent records. The store
// must refuse with StorageCorruptionError naming the file (and the log index when there is one),
// never serve wrong data, and never crash the process on the way.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { indexKey } from '../../src/storage/bytes.ts';
import { openDatabases, openRoot } from '../../src/storage/env.ts';
import { RaftKey, encodeIndex } from '../../src/storage/records.ts';
import { putRaft } from '../../src/storage/raft-table.ts';
import { openReplicaStore, openStore, StorageCorruptionError, type Command } from '../../src/storage/index.ts';
import { CONF, b, openFresh, ready, tempDir } from './helpers.ts';
import { childArgs } from '../support/child-script.ts';
import { reapOnExit } from '../support/processes.ts';

const CHILD = fileURLToPath(new URL('./open-child.ts', import.meta.url));
const WAL_CHILD = fileURLToPath(new URL('./wal-store-child.ts', import.meta.url));
const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

const marker = (i: number): string => `ENTRY-MARK-${String(i).padStart(6, '0')}`;

/** A closed store: 3000 entries with findable payloads, 2000 applied into 2000 keys. */
async function makeStore(label: string): Promise<string> {
  const dir = tempDir(label);
  dirs.push(dir);
  const s = openFresh(dir);
  for (let from = 1; from <= 3000; from += 500) {
    const es = Array.from({ length: 500 }, (_, k) => ({ index: from + k, term: 7, type: 0 as const, data: Buffer.from(`${marker(from + k)}:${'x'.repeat(60)}`) }));
    await s.persist(ready({ entries: es, hardState: { term: 0x0badcafe, vote: 0x51, commit: from + 499 } }));
    await s.settled(); // LMDB's commits at fixed points: the same file layout in every run
  }
  const cmds: Command[] = Array.from({ length: 2000 }, (_, i) => ({ type: 'ops', ops: [{ type: 'put', key: b(`key-${i}`), value: b(`VALUE-MARK-${i}:`.padEnd(80, 'v')) }] }));
  await s.apply(2000, cmds);
  await s.close();
  return dir;
}

const dataFile = (dir: string): string => join(dir, 'data.mdb');

/** Flips one bit in every copy of `pattern` in the data file (LMDB may hold stale copies too). */
function flipAll(dir: string, pattern: Buffer, at = 0): number {
  const file = dataFile(dir);
  const data = fs.readFileSync(file);
  let n = 0;
  for (let i = data.indexOf(pattern); i >= 0; i = data.indexOf(pattern, i + 1)) {
    data[i + at]! ^= 0x10;
    n++;
  }
  fs.writeFileSync(file, data);
  return n;
}

function openInChild(dir: string, shared = false): { ok?: boolean; digest?: string; error?: string; message?: string; index?: number | null } {
  const r = spawnSync(process.execPath, [...childArgs(CHILD), dir, ...(shared ? ['shared'] : [])], { encoding: 'utf8' });
  assert.equal(r.signal, null, `the reader died of ${r.signal}: ${r.stderr}`);
  const line = r.stdout.trim().split('\n').at(-1) ?? '';
  assert.ok(line.startsWith('{'), `no result from the reader: ${r.stdout} ${r.stderr}`);
  return JSON.parse(line) as ReturnType<typeof openInChild>;
}

/**
 * `trials` times: one random bit of `pristine` flipped (past LMDB's meta pages, which carry no
 * checksum of their own), written to `file`, then read: the reader must serve exactly the clean
 * data (the flip hit free space or slack) or refuse the store with an error naming the file.
 */
function randomFlips(file: string, pristine: Buffer, trials: number, seed: number, read: (trial: number) => { r: ReturnType<typeof openInChild>; clean: string }): { intact: number; refused: number } {
  const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const outcomes = { intact: 0, refused: 0 };
  for (let trial = 0; trial < trials; trial++) {
    const damaged = Buffer.from(pristine);
    const offset = 2 * 8192 + Math.floor(random() * (damaged.length - 2 * 8192));
    damaged[offset]! ^= 1 << Math.floor(random() * 8);
    fs.writeFileSync(file, damaged);
    const { r, clean } = read(trial);
    if (r.ok) {
      assert.equal(r.digest, clean, `offset ${offset}: a damaged store served different data`);
      outcomes.intact++;
    } else {
      assert.ok(r.error === 'StorageCorruptionError' && r.message!.includes(file), `offset ${offset}: ${r.error}: ${r.message}`);
      outcomes.refused++;
    }
  }
  return outcomes;
}

function assertCorruption(dir: string, fn: () => unknown, match: RegExp, index?: number): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof StorageCorruptionError, `expected StorageCorruptionError, got ${String(e)}`);
    assert.ok(e.message.includes(dataFile(dir)), `message names the file: ${e.message}`);
    assert.match(e.message, match);
    if (index !== undefined) {
      assert.equal(e.index, index);
      assert.ok(e.message.includes(`log index ${index}`), e.message);
    }
    return true;
  });
}

describe('corruption', () => {
  it('a flipped byte in a log entry: refused, naming the file and the index', async () => {
    const dir = await makeStore('flip-entry');
    assert.ok(flipAll(dir, Buffer.from(marker(1234)), 13) >= 1);
    const s = openReplicaStore({ path: dir });
    assertCorruption(dir, () => s.load(), /entry fails its checksum/, 1234);
    await s.close();
  });

  it('a flipped byte in the hard state: refused', async () => {
    const dir = await makeStore('flip-hs');
    const term = Buffer.from([0, 0, 0, 0, 0x0b, 0xad, 0xca, 0xfe]);
    assert.ok(flipAll(dir, term, 6) >= 1);
    const s = openReplicaStore({ path: dir });
    assertCorruption(dir, () => s.load(), /hard-state record fails its checksum/);
    await s.close();
  });

  it('a flipped byte in a value: never served, reported on read and by verification', async () => {
    const dir = await makeStore('flip-value');
    assert.ok(flipAll(dir, b('VALUE-MARK-777:'), 3) >= 1);
    const s = openReplicaStore({ path: dir });
    s.load(); // the log and records are intact; values are checked as they are read
    assert.deepEqual(Buffer.from(s.get(b('key-776'))!).subarray(0, 15), b('VALUE-MARK-776:'));
    assertCorruption(dir, () => s.get(b('key-777')), /kv record with key 0x6b65792d373737: value fails its checksum/);
    assertCorruption(dir, () => s.scan(b('key-7'), b('key-8'), 1000), /value fails its checksum/);
    assertCorruption(dir, () => s.verifyStateMachine(), /value fails its checksum/);
    await s.close();
  });

  it('a truncated data file: refused with a clear error, not a SIGBUS', async () => {
    for (const keep of [0.5, 0.9]) {
      const dir = await makeStore('truncate');
      const size = fs.statSync(dataFile(dir)).size;
      fs.truncateSync(dataFile(dir), Math.floor((size * keep) / 8192) * 8192);
      const r = openInChild(dir);
      assert.equal(r.error, 'StorageCorruptionError', JSON.stringify(r));
      assert.ok(r.message!.includes(dataFile(dir)), r.message);
      assert.match(r.message!, /the data file was \d+ bytes but its last transaction uses \d+ bytes \(truncated\?\)/);
    }
  });

  it('a data file cut below its meta pages, emptied, or missing: refused, not recreated empty', async () => {
    for (const damage of ['short', 'empty', 'missing'] as const) {
      const dir = await makeStore(`gone-${damage}`);
      if (damage === 'missing') fs.rmSync(dataFile(dir));
      else fs.truncateSync(dataFile(dir), damage === 'short' ? 5000 : 0);
      assertCorruption(dir, () => openReplicaStore({ path: dir }), damage === 'missing' ? /the data file is missing/ : /truncated to \d+ bytes/);
      assert.equal(fs.existsSync(dataFile(dir)), damage !== 'missing'); // nothing was created in its place
    }
  });

  // Its synced records past LMDB's checkpoint are acknowledged writes: recreating the directory
  // empty would lose them silently (found by an outside review).
  it('a removed write-ahead log directory: refused, not recreated empty', async () => {
    const dir = await makeStore('wal-gone');
    const wal = join(dir, 'wal');
    assert.ok(fs.existsSync(wal));
    fs.rmSync(wal, { recursive: true });
    assert.throws(
      () => openReplicaStore({ path: dir }),
      (e: unknown) => e instanceof StorageCorruptionError && e.message.includes(wal) && /write-ahead log directory is missing/.test(e.message),
    );
    assert.equal(fs.existsSync(wal), false, 'nothing was created in its place');
  });

  it('a store in a shared environment whose log directory was removed: refused', async () => {
    const root = tempDir('wal-gone-shared');
    dirs.push(root);
    const shared = join(root, 'p0');
    const path = join(root, 'r1');
    const s = await openStore({ path, sharedData: shared });
    s.load(CONF);
    await s.persist(ready({ entries: [{ index: 1, term: 1, type: 0, data: b('x') }], hardState: { term: 1, vote: 1, commit: 1 } }));
    await s.close();
    fs.rmSync(join(path, 'wal'), { recursive: true });
    await assert.rejects(
      async () => openStore({ path, sharedData: shared }),
      (e: unknown) => e instanceof StorageCorruptionError && /write-ahead log directory is missing/.test(e.message),
    );
  });

  // Acknowledged entries only in the log (LMDB's checkpoint held back, then SIGKILL): what a
  // damaged or removed log segment costs, and what a torn tail may cut.
  async function killedWithLogOnly(label: string, readies: number): Promise<{ dir: string; segment: string }> {
    const dir = tempDir(label);
    dirs.push(dir);
    const child = reapOnExit(spawn(process.execPath, [...childArgs(WAL_CHILD), dir, String(readies)], { stdio: ['ignore', 'pipe', 'inherit'] }));
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (l) => l === 'synced' && resolve());
      child.once('exit', (code) => reject(new Error(`the child exited (${code}) before its entries were synced`)));
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const wal = join(dir, 'wal');
    const [name, ...more] = fs.readdirSync(wal).filter((n) => n.endsWith('.log'));
    assert.ok(name && more.length === 0);
    return { dir, segment: join(wal, name) };
  }

  it('a damaged log record past the checkpoint, holding a zeroed sector, with synced records after it: refused, not cut (found in review)', async () => {
    const { dir, segment } = await killedWithLogOnly('wal-zero-sector', 3);
    const bytes = fs.readFileSync(segment);
    const at = bytes.indexOf('TAIL-1');
    bytes[at]! ^= 0x01; // entry 1's record: its 2048 zeros passed for a sector a power loss left unwritten
    fs.writeFileSync(segment, bytes);
    assert.throws(
      () => openReplicaStore({ path: dir }),
      (e: unknown) => e instanceof StorageCorruptionError && e.file === segment && /damage, not a torn write/.test(e.message),
    );
    assert.deepEqual(fs.readFileSync(segment), bytes, 'nothing cut');
  });

  it('a torn last log record after a crash: cut, and the entries before it are served', async () => {
    const { dir, segment } = await killedWithLogOnly('wal-torn', 3);
    fs.truncateSync(segment, fs.statSync(segment).size - 5); // the last write, cut short
    const s = openReplicaStore({ path: dir });
    const st = s.load();
    assert.deepEqual(st.entries.map((e) => e.index), [1, 2]);
    await s.close();
  });

  it('a log directory emptied of its segments: refused, not restarted after the checkpoint', async () => {
    const { dir, segment } = await killedWithLogOnly('wal-emptied', 3);
    fs.rmSync(segment); // entries 1..3, acknowledged, were only there
    assert.throws(
      () => openReplicaStore({ path: dir }),
      (e: unknown) => e instanceof StorageCorruptionError && /the log holds no segment, but one always stays/.test(e.message),
    );
    assert.deepEqual(fs.readdirSync(join(dir, 'wal')), [], 'nothing created in their place');
  });

  it('another store\'s data file in this directory: refused', async () => {
    const a = await makeStore('swap-a');
    const other = await makeStore('swap-b');
    fs.copyFileSync(dataFile(other), dataFile(a));
    assertCorruption(a, () => openReplicaStore({ path: a }), /the data file is store [0-9a-f]+, but .*replica\.id names/);
  });

  describe('inconsistent records', () => {
    /** Edits the store below the API, as damage or a bug would. */
    async function tamper(dir: string, edit: (env: ReturnType<typeof openDatabases>) => void): Promise<void> {
      const root = openRoot(dir);
      const env = openDatabases(root, dataFile(dir));
      env.root.transactionSync(() => edit(env));
      await root.close();
    }

    it('a state machine ahead of its log', async () => {
      const dir = await makeStore('ahead');
      await tamper(dir, (env) => void putRaft(env, RaftKey.applied, encodeIndex(3500)));
      const s = openReplicaStore({ path: dir });
      assertCorruption(dir, () => s.load(), /state machine is ahead of its log: applied index 3500, last log entry 3000/, 3500);
      await s.close();
    });

    // makeStore writes runs of 500 entries (one per Ready): 1..500, 501..1000, ...
    it('a hole in the log', async () => {
      const dir = await makeStore('hole');
      await tamper(dir, (env) => void env.log.remove(indexKey(1501)));
      const s = openReplicaStore({ path: dir });
      assertCorruption(dir, () => s.load(), /the entry is missing \(the log jumps to 2001\)/, 1501);
      await s.close();
    });

    it('a truncated entry at the end of the log', async () => {
      const dir = await makeStore('short-entry');
      await tamper(dir, (env) => {
        const v = env.log.get(indexKey(2501))!;
        void env.log.put(indexKey(2501), v.subarray(0, v.length - 20));
      });
      const s = openReplicaStore({ path: dir });
      assertCorruption(dir, () => s.load(), /the entry is cut short/, 3000);
      await s.close();
    });

    it('a hard state committing beyond the log', async () => {
      const dir = await makeStore('commit');
      await tamper(dir, (env) => void env.log.remove(indexKey(2501)));
      const s = openReplicaStore({ path: dir });
      assertCorruption(dir, () => s.load(), /commit index is beyond the last log entry 2500/, 3000);
      await s.close();
    });
  });

  it('random byte flips anywhere in the data pages: either read back intact or refused', async () => {
    const dir = await makeStore('random');
    const clean = openInChild(dir);
    assert.ok(clean.ok, JSON.stringify(clean));
    const pristine = fs.readFileSync(dataFile(dir));
    const outcomes = randomFlips(dataFile(dir), pristine, 30, 12345, () => ({ r: openInChild(dir), clean: clean.digest! }));
    fs.writeFileSync(dataFile(dir), pristine);
    console.log(`# random flips: ${outcomes.intact} landed in unused bytes, ${outcomes.refused} refused`);
  });

  it('a shared environment, truncated or with random byte flips: refused with a clear error, or read back intact', async () => {
    // Two replicas' stores in one environment, as a kvs host keeps them.
    const root = tempDir('shared-corrupt');
    dirs.push(root);
    const shared = join(root, 'p0');
    for (const r of ['r1', 'r2']) {
      const s = await openStore({ path: join(root, r), sharedData: shared });
      s.load({ voters: [1], learners: [] });
      await s.persist(ready({ entries: Array.from({ length: 800 }, (_, k) => ({ index: k + 1, term: 3, type: 0 as const, data: Buffer.from(`${r}-${marker(k)}`) })), hardState: { term: 3, vote: 1, commit: 800 } }));
      // LMDB commits what the log holds on its own schedule: commit now, so that the file's layout
      // (and where the seeded flips land) is the same in every run.
      await s.settled();
      await s.apply(800, Array.from({ length: 500 }, (_, i) => ({ type: 'ops' as const, ops: [{ type: 'put' as const, key: b(`k${i}`), value: b(`${r}-value-${i}`.padEnd(60, 'v')) }] })));
      await s.close();
    }
    const clean = [openInChild(join(root, 'r1'), true), openInChild(join(root, 'r2'), true)];
    assert.ok(clean.every((r) => r.ok), JSON.stringify(clean));
    const pristine = fs.readFileSync(dataFile(shared));

    fs.truncateSync(dataFile(shared), Math.floor((pristine.length * 0.6) / 8192) * 8192);
    const cut = openInChild(join(root, 'r1'), true);
    assert.equal(cut.error, 'StorageCorruptionError', JSON.stringify(cut));
    assert.match(cut.message!, /truncated\?/);

    const outcomes = randomFlips(dataFile(shared), pristine, 16, 777, (trial) => ({ r: openInChild(join(root, trial % 2 === 0 ? 'r1' : 'r2'), true), clean: clean[trial % 2]!.digest! }));
    console.log(`# shared environment, random flips: ${outcomes.intact} landed in unused bytes or the other store, ${outcomes.refused} refused`);
  });
});
