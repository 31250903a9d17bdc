// The free-space floor refuses only what statfs shows to be full. A file system that reports no
// blocks at all (FUSE and network mounts may: f_blocks 0, so 0 free) said nothing about its space,
// yet a new store there was refused as if the disk were full: a replica that could not start.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, it, mock } from 'node:test';
import { freeBytes } from '../../src/storage/disk-space.ts';
import { StorageError } from '../../src/storage/errors.ts';
import { openReplicaStore } from '../../src/storage/index.ts';
import { CONF, openFresh, tempDir } from './helpers.ts';

const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
afterEach(() => mock.restoreAll());

/** statfs answers as a file system of `blocks` 4 KiB blocks with `free` of them free. */
function statfsSays(blocks: number, free: number): void {
  const real = fs.statfsSync;
  mock.method(fs, 'statfsSync', (path: fs.PathLike) => ({ ...real(path), bsize: 4096, blocks, bfree: free, bavail: free }));
}

it('a file system that reports no blocks: free space unknown, and a new store opens there', async () => {
  statfsSays(0, 0);
  const dir = tempDir('statfs-no-blocks');
  dirs.push(dir);
  const store = openFresh(dir);
  await store.close();
  assert.equal(freeBytes(dir), undefined);
});

it('a file system that reports its blocks, nearly all used: a new store is refused, an existing one opens', async () => {
  const existing = tempDir('statfs-full-existing');
  const fresh = tempDir('statfs-full-new');
  dirs.push(existing, fresh);
  await openFresh(existing).close();
  statfsSays(1000, 10);
  assert.equal(freeBytes(fresh), 10 * 4096);
  assert.throws(() => openReplicaStore({ path: fresh }), (e: unknown) => e instanceof StorageError && /LMDB needs free space to open it/.test(e.message));
  assert.equal(fs.existsSync(join(fresh, 'data.mdb')), false, 'a refused start created the data file');
  const store = openReplicaStore({ path: existing });
  store.load(CONF);
  await store.close();
});
