// The failed-commit scenario in a process of its own (failed-commit.test.ts runs it with the data
// file on a 1 MiB tmpfs, the log on the ordinary disk): no test runner's rejection listener, so
// an unhandled rejection ends it as it would end a server.
//   node --import tsx test/storage/failed-commit-child.ts DATA_DIR WAL_DIR
import fs from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { openReplicaStore } from '../../src/storage/index.ts';
import { CONF, b, entries, hs, ready } from './helpers.ts';

const [dir, wal] = process.argv.slice(2) as [string, string];
fs.symlinkSync(wal, join(dir, 'wal'));
const store = openReplicaStore({ path: dir, checkpointMs: 1e9, checkStructure: false });
store.load(CONF);
await store.persist(ready({ entries: entries(1, 3, 1), hardState: hs(1, 3) }));
store.commitSoon();
await store.settled(); // LMDB holds entries 1..3

// Apply 1 does not fit the file system: its checkpoint fails. Apply 2 is held back behind it, and
// reads through apply 1's writes. Both were answered (at compute time) before any commit.
const big = Array.from({ length: 4 }, (_, i) => ({ type: 'put' as const, key: b(`big${i}`), value: randomBytes(600_000) }));
const answered: number[] = [];
const a1 = store.apply(1, [{ type: 'ops', ops: [{ type: 'put', key: b('a'), value: b('acknowledged') }, ...big] }], () => answered.push(1));
store.commitSoon();
const a2 = store.apply(2, [{ type: 'ops', ops: [{ type: 'put', key: b('b'), value: b('2') }] }], () => answered.push(2));
store.commitSoon();
const outcome = (p: Promise<unknown>): Promise<string> => p.then(() => 'committed', () => 'failed');
const [r1, r2] = [await outcome(a1), await outcome(a2)];
await new Promise((r) => setTimeout(r, 300)); // late rejections, if any, surface here
await store.close();

const again = openReplicaStore({ path: dir, checkStructure: false });
const st = again.load();
const a = again.get(b('a'));
console.log(JSON.stringify({ answered, r1, r2, applied: st.applied, a: a === null ? null : Buffer.from(a).toString() }));
await again.close();
