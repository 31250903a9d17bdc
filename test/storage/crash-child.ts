// Child process of crash.test.ts: appends and applies under heavy load until it is SIGKILLed.
// It prints a line only after the write it reports is durable (pipes are synchronous on Linux, so
// a printed line is in the pipe before the next write starts):
//   P <from> <to> <term>   entries from..to (replacing any from `from` on) are fsynced
//   C <index>              the log is compacted up to index
//   A <index>              the state machine is applied up to index
//   I <index>              (install mode) the snapshot at index is installed
// In log mode each line starts with the number of its store (0, 1, ...): several stores, given as
// a comma-separated list of replica directories, run the workload at once, in one environment
// shared by all of them when a shared directory is given (as the replicas of a kvs host do).
//   usage: crash-child.ts log <dir>[,<dir>...] <seed> [<shared-dir>] | install <target-dir> <source-dir>
import fs from 'node:fs';
import type { Entry } from '../../src/raft/types.ts';
import { openReplicaStore, openStore, type ReplicaStore } from '../../src/storage/index.ts';
import { commandsOf, entryData } from './crash-workload.ts';
import { chunksOf, CONF, ready } from './helpers.ts';

const say = (line: string): void => void fs.writeSync(1, `${line}\n`);

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

async function logWorkload(store: ReplicaStore, seed: number, say: (line: string) => void): Promise<void> {
  const random = rng(seed);
  const int = (lo: number, hi: number): number => lo + Math.floor(random() * (hi - lo + 1));
  const st = store.load(CONF);
  let base = st.base;
  let term = Math.max(st.hardState.term, 1);
  let applied = st.applied;
  const terms = new Map<number, number>(st.entries.map((e) => [e.index, e.term]));
  let last = st.entries.at(-1)?.index ?? base.index;
  say(`S ${applied} ${last}`);

  for (;;) {
    // Mostly appends of 1..256 entries; sometimes a new term overwriting an unapplied suffix.
    let from = last + 1;
    if (random() < 0.05) {
      term++;
      from = Math.max(applied + 1, base.index + 1, last - int(0, 30));
    }
    const to = Math.max(last, from) + int(1, random() < 0.7 ? 16 : 256);
    const entries: Entry[] = [];
    for (let i = from; i <= to; i++) entries.push({ index: i, term, type: 0, data: entryData(i, term) });
    let compaction;
    if (random() < 0.03 && applied - base.index > 2000) {
      const at = applied - 500;
      compaction = { index: at, term: terms.get(at)!, conf: CONF };
    }
    const rd = ready({ entries, hardState: { term, vote: 1, commit: to }, compaction });
    const applyTo = random() < 0.8 && from - 1 > applied ? int(applied + 1, from - 1) : applied;
    const commands = [];
    for (let i = applied + 1; i <= applyTo; i++) commands.push(...commandsOf(i));

    const persisted = store.persist(rd);
    const sameTurn = random() < 0.5;
    const applying = applyTo > applied && sameTurn ? store.apply(applyTo, commands) : undefined;
    await persisted;
    for (let i = from; i <= last; i++) terms.delete(i);
    for (const e of entries) terms.set(e.index, e.term);
    last = to;
    say(`P ${from} ${to} ${term}`);
    if (compaction) {
      for (let i = base.index + 1; i <= compaction.index; i++) terms.delete(i);
      base = compaction;
      say(`C ${compaction.index}`);
    }
    if (applyTo > applied) {
      await (applying ?? store.apply(applyTo, commands));
      applied = applyTo;
      say(`A ${applied}`);
    }
  }
}

/** Streams the source's image into the target (one Ready per chunk), then installs it. */
async function installWorkload(targetDir: string, sourceDir: string): Promise<void> {
  const source = openReplicaStore({ path: sourceDir });
  source.load();
  const target = openReplicaStore({ path: targetDir });
  target.load();
  const index = source.snapshots.capture();
  const meta = { index, term: 1, conf: CONF };
  say(`S ${index}`);
  for (const chunk of chunksOf(source, index, meta, 16 * 1024)) await target.persist(ready({ snapshotChunks: [chunk] }));
  await target.persist(ready({ snapshot: meta, hardState: { term: 1, vote: 0, commit: index } }));
  say(`I ${index}`);
  await target.close();
  await source.close();
}

async function logWorkloads(dirs: string[], seed: number, shared: string | undefined): Promise<void> {
  const stores = await Promise.all(dirs.map((path) => openStore({ path, ...(shared !== undefined ? { sharedData: shared } : {}) })));
  await Promise.all(stores.map((s, k) => logWorkload(s, seed + k, (line) => say(`${k} ${line}`))));
}

const [mode, a, b, c] = process.argv.slice(2);
if (mode === 'log') await logWorkloads(a!.split(','), Number(b), c);
else if (mode === 'install') await installWorkload(a!, b!);
else throw new Error(`unknown mode ${mode}`);
