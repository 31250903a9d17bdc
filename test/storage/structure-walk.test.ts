// The walk of a damaged data file reports LMDB's own error. Before, an outside test's replica
// refused a damaged store with "LMDB cannot walk the databases (if (keySize < -30700 && keySize
// !== -30798) lmdbError(keySize);)": the first stderr line of the walker that said "error" was
// the lmdb-js source line Node prints above an uncaught error, not the error.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { open } from 'lmdb';
import { ENV_OPTIONS, PAGE_SIZE } from '../../src/storage/env.ts';
import { StorageCorruptionError } from '../../src/storage/errors.ts';
import { checkStructure } from '../../src/storage/structure-check.ts';
import { tempDir } from './helpers.ts';

const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

it('a branch page damaged so that LMDB fails (not crashes) is reported with the error LMDB gives, in one line', async () => {
  const dir = tempDir('walk');
  dirs.push(dir);
  const root = open({ path: dir, ...ENV_OPTIONS });
  const db = root.openDB('kv', { keyEncoding: 'binary', encoding: 'binary' });
  await db.transaction(() => {
    for (let i = 0; i < 4000; i++) void db.put(Buffer.from(`key-${String(i).padStart(6, '0')}`), Buffer.alloc(100, i));
  });
  await root.close();
  const file = join(dir, 'data.mdb');
  const bytes = fs.readFileSync(file);
  bytes.fill(0xff, 3 * PAGE_SIZE + 2000, 3 * PAGE_SIZE + 6000); // page 3: LMDB reports MDB_BAD_TXN reading it
  fs.writeFileSync(file, bytes);
  assert.throws(
    () => checkStructure(dir, file, ['kv']),
    (e: unknown) => {
      assert.ok(e instanceof StorageCorruptionError);
      assert.match(e.message, /^storage corruption in .*data\.mdb: LMDB cannot walk the databases \(MDB_[A-Z_]+: [^\n]+\)$/);
      return true;
    },
  );
});
