// Child process of corruption.test.ts: persists Readies through the write-ahead log with LMDB's
// checkpoint held back, prints "synced" once every one is durable, and waits to be SIGKILLed: the
// log then holds acknowledged entries LMDB does not.
//   usage: wal-store-child.ts <dir> <readies>
// Entry i's data: `HEAD-i` ‖ 2048 zero bytes (whole zero sectors) ‖ `TAIL-i`.
import fs from 'node:fs';
import { openReplicaStore } from '../../src/storage/index.ts';
import { CONF, ready } from './helpers.ts';

const [dir, count] = process.argv.slice(2) as [string, string];
const store = openReplicaStore({ path: dir, checkpointMs: 3_600_000 });
store.load(CONF);
for (let i = 1; i <= Number(count); i++) {
  const data = Buffer.concat([Buffer.from(`HEAD-${i}`), Buffer.alloc(2048), Buffer.from(`TAIL-${i}`)]);
  await store.persist(ready({ entries: [{ index: i, term: 1, type: 0, data }], hardState: { term: 1, vote: 1, commit: i } }));
}
fs.writeSync(1, 'synced\n');
setInterval(() => undefined, 60_000);
