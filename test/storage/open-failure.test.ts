// Opening the LMDB environment fails: damaged meta pages are reported as corruption of the data
// file (before this fix: SIGSEGV in lmdb-js, or a message naming no file), and nothing is written;
// the failures that are not corruption (a data file that is a directory, a directory lmdb-js
// takes for a file) keep a clear message of their own. Opened in a child process (open-child.ts),
// so that a crash fails the test instead of killing the runner.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openStore } from '../../src/storage/index.ts';
import { openFresh, entries, hs, ready, tempDir } from './helpers.ts';
import { childArgs } from '../support/child-script.ts';

const CHILD = fileURLToPath(new URL('./open-child.ts', import.meta.url));
const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function scratch(): string {
  const d = tempDir('open-failure');
  dirs.push(d);
  return d;
}

function openInChild(dir: string, shared = false): { ok?: boolean; error?: string; message?: string } {
  const r = spawnSync(process.execPath, [...childArgs(CHILD), dir, ...(shared ? ['shared'] : [])], { encoding: 'utf8' });
  assert.equal(r.signal, null, `the reader died of ${r.signal}: ${r.stderr}`);
  const line = r.stdout.trim().split('\n').at(-1) ?? '';
  assert.ok(line.startsWith('{'), `no result from the reader (status ${r.status}): ${r.stdout} ${r.stderr}`);
  return JSON.parse(line) as ReturnType<typeof openInChild>;
}

/** A closed store of its own with a few entries. */
async function ownStore(name = 'r1'): Promise<string> {
  const dir = join(scratch(), name);
  const s = openFresh(dir);
  await s.persist(ready({ entries: entries(1, 5, 1), hardState: hs(1, 5) }));
  await s.settled();
  await s.close();
  return dir;
}

// Offsets in LMDB's meta pages (8 KiB pages): page flags at 18, magic at 24, data version at 28.
const flip = (b: Buffer, at: number, mask: number): void => void b.writeUInt8(b.readUInt8(at) ^ mask, at);
const damages: [string, (b: Buffer) => void][] = [
  ['the magic of meta page 0', (b) => flip(b, 24, 0xff)],
  ['the data version of meta page 0', (b) => flip(b, 28, 0x01)],
  ['the page flags of meta page 0', (b) => b.fill(0, 0, 8192)],
  ['the magic of meta page 1', (b) => flip(b, 8192 + 24, 0xff)],
  ['both meta pages', (b) => b.fill(0xa5, 0, 2 * 8192)],
];

function damage(file: string, how: (b: Buffer) => void): Buffer {
  const bytes = fs.readFileSync(file);
  how(bytes);
  fs.writeFileSync(file, bytes);
  return bytes;
}

describe('opening an environment that LMDB cannot open', () => {
  for (const [what, how] of damages) {
    it(`reports damage to ${what} as corruption of data.mdb, and writes nothing`, async () => {
      const dir = await ownStore();
      const dataFile = join(dir, 'data.mdb');
      const damaged = damage(dataFile, how);
      const r = openInChild(dir);
      assert.equal(r.error, 'StorageCorruptionError', r.message);
      assert.ok(r.message!.startsWith(`storage corruption in ${dataFile}: LMDB cannot open the environment (`), r.message);
      assert.match(r.message!, /meta page/);
      assert.deepEqual(fs.readFileSync(dataFile), damaged, 'the data file is left as it was');
    });
  }

  it('reports a damaged meta page of a shared environment as corruption of its data.mdb', async () => {
    const root = scratch();
    const shared = join(root, 'p0');
    const replica = join(root, 'g1-r101');
    const s = await openStore({ path: replica, sharedData: shared });
    s.load({ voters: [101], learners: [] });
    await s.persist(ready({ entries: entries(1, 3, 1), hardState: hs(1, 3) }));
    await s.settled();
    await s.close();
    const dataFile = join(shared, 'data.mdb');
    const damaged = damage(dataFile, (b) => flip(b, 24, 0xff));
    const r = openInChild(replica, true);
    assert.equal(r.error, 'StorageCorruptionError', r.message);
    assert.ok(r.message!.startsWith(`storage corruption in ${fs.realpathSync(dataFile)}: LMDB cannot open the environment (meta page 0 has magic`), r.message);
    assert.deepEqual(fs.readFileSync(dataFile), damaged);
  });

  it('says so, without calling it corruption, when data.mdb is a directory', () => {
    const dir = join(scratch(), 'r1');
    fs.mkdirSync(join(dir, 'data.mdb'), { recursive: true });
    const r = openInChild(dir);
    assert.equal(r.error, 'StorageError', r.message);
    assert.equal(r.message, `cannot open the LMDB environment in ${dir}: Is a directory: Attempting to open main database file (EISDIR): ${join(dir, 'data.mdb')} is a directory`);
  });

  it('opens a store in a directory whose name has a dot (lmdb-js took it for the data file)', async () => {
    const dir = await ownStore('node.1');
    assert.ok(fs.statSync(dir).isDirectory() && fs.existsSync(join(dir, 'data.mdb')), 'a directory with the data file in it');
    assert.equal(openInChild(dir).ok, true);
  });

  it('opens an undamaged store as before', async () => {
    const dir = await ownStore();
    assert.equal(openInChild(dir).ok, true);
  });
});
