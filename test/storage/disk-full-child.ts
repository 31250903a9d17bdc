// A store whose file system fills up, in a process of its own (disk-full.test.ts runs it in a
// mount namespace with the store on a small tmpfs): writes until one fails and prints the error
// the replica would log. `wal`: the log shares the tmpfs; `lmdb`: the log is elsewhere (WAL_DIR),
// so the checkpoint into LMDB is what fails; `open`, `open-shared`: a new store opened on the
// file system already full (its own environment, or a shared one).
//   node --import tsx test/storage/disk-full-child.ts DATA_DIR wal|lmdb|open|open-shared [WAL_DIR]
import fs from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { openReplicaStore, openStore } from '../../src/storage/index.ts';
import { CONF, hs, ready } from './helpers.ts';

const [dir, which, wal] = process.argv.slice(2) as [string, 'wal' | 'lmdb' | 'open' | 'open-shared', string | undefined];
if (which === 'lmdb') fs.symlinkSync(wal!, join(dir, 'wal'));
if (which === 'open' || which === 'open-shared') {
  const shared = join(dir, '..', 'p0');
  fs.mkdirSync(shared);
  const filler = fs.openSync(join(dir, '..', 'filler'), 'w');
  try {
    for (;;) fs.writeSync(filler, Buffer.alloc(4096));
  } catch {
    fs.closeSync(filler); // ENOSPC: full
  }
  const opened = which === 'open' ? Promise.resolve().then(() => openReplicaStore({ path: dir })) : openStore({ path: dir, sharedData: shared });
  const error = await opened.then(
    async (s) => (await s.close(), 'opened'),
    (e: unknown) => (e instanceof Error ? e.message : String(e)),
  );
  console.log(JSON.stringify({ error }));
  process.exit(0);
}
const store = openReplicaStore({ path: dir, checkStructure: false });
store.load(CONF);
let error: unknown;
for (let i = 1; i <= 64 && error === undefined; i++) {
  try {
    await store.persist(ready({ entries: [{ index: i, term: 1, type: 0, data: randomBytes(100_000) }], hardState: hs(1, 0) }));
    store.commitSoon();
    await store.settled();
  } catch (e) {
    error = e;
  }
}
console.log(JSON.stringify({ error: error instanceof Error ? error.message : String(error) }));
await store.close().catch(() => undefined);
