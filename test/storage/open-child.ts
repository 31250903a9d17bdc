// Child process of corruption.test.ts: opens a store and reads all of it, in a process of its own
// so that a failure to detect damage (LMDB faulting on a bad page) cannot take the runner down.
// Prints one JSON line: {"ok":true,"digest":...} or {"error":<class>,"message":...,"index":...}.
//   usage: open-child.ts <dir> [shared]   (shared: <dir> is a replica directory whose marker names its store)
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { openReplicaStore, openStore, StorageCorruptionError } from '../../src/storage/index.ts';

const dir = process.argv[2]!;
const shared = process.argv[3] === 'shared';
const out = (v: unknown): void => void fs.writeSync(1, `${JSON.stringify(v)}\n`);
try {
  const store = shared ? await openStore({ path: dir }) : openReplicaStore({ path: dir });
  const st = store.load();
  store.verifyStateMachine();
  // A digest of everything readable, for comparing with the undamaged store.
  const h = createHash('sha256');
  h.update(JSON.stringify({ hs: st.hardState, base: st.base, applied: st.applied }));
  for (const e of st.entries) h.update(`${e.index}/${e.term}/${e.type}/`).update(e.data);
  for (const kv of store.scan(Buffer.of(0), null, 1e9).items) h.update(kv.key).update(kv.value);
  await store.close();
  out({ ok: true, digest: h.digest('hex') });
} catch (e) {
  const err = e as Error;
  out({ error: err.name, message: err.message, index: e instanceof StorageCorruptionError ? (e.index ?? null) : null });
}
