// A damaged replica.id is reported as such. Before, an outside test's replica with garbage or
// nothing in it was refused with "the data file is store 1789…, but …/replica.id names " (the
// garbage read as hex was an empty id): the message blamed the data file and named no id.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { StorageCorruptionError } from '../../src/storage/errors.ts';
import { openReplicaStore } from '../../src/storage/index.ts';
import { CONF, openFresh, tempDir } from './helpers.ts';

const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

for (const [what, text] of [['garbage', 'garbage\n'], ['nothing', ''], ['a cut id', '17894b7ba7d5785c\n']] as const) {
  it(`replica.id holding ${what}: refused naming replica.id, and what to do`, async () => {
    const dir = tempDir('id-file');
    dirs.push(dir);
    await openFresh(dir).close();
    const idFile = join(dir, 'replica.id');
    fs.writeFileSync(idFile, text);
    assert.throws(
      () => openReplicaStore({ path: dir }).load(CONF),
      (e: unknown) =>
        e instanceof StorageCorruptionError &&
        e.file === idFile &&
        e.message.includes(`the file is damaged: ${JSON.stringify(text)} is not a store id`) &&
        /remove it only if that data file is known to be the right one/.test(e.message),
    );
    assert.equal(fs.readFileSync(idFile, 'utf8'), text, 'replica.id was changed');
  });
}

// Earlier versions read the id as hex in any case: a store named in uppercase (hand-copied, or
// written by another tool) opened then, and must still open, not be called damaged.
it('replica.id naming the store in uppercase (with CRLF): the store opens', async () => {
  const dir = tempDir('id-file-upper');
  dirs.push(dir);
  await openFresh(dir).close();
  const idFile = join(dir, 'replica.id');
  fs.writeFileSync(idFile, `${fs.readFileSync(idFile, 'utf8').trim().toUpperCase()}\r\n`);
  const store = openReplicaStore({ path: dir });
  store.load(CONF);
  await store.close();
});
