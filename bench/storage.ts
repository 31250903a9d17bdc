// Durable Raft-log appends through ReplicaStore.persist, beside two baselines measured in the same
// run: raw write+fdatasync, and plain lmdb-js puts of the same entries awaited until flushed.
// Not a test.
//   node --import tsx bench/storage.ts [--seconds 2] [--dir /path/on/the/disk] [--overlapping]
//     --overlapping  open the store with lmdb-js overlappingSync (the measured alternative)
//     --loop         also time a Ready loop: persist then apply, in one turn vs one after the other
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'lmdb';
import type { Entry, Ready } from '../src/raft/types.ts';
import { openReplicaStore, type ReplicaStore } from '../src/storage/index.ts';
import { encodeEntries } from '../src/storage/log-codec.ts';
import { machine, printResult } from './machine.ts';

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i < 0 ? undefined : process.argv[i + 1];
};
const seconds = Number(arg('--seconds')) || 2;
const root = arg('--dir') ?? fs.mkdtempSync(join(tmpdir(), 'kvs-bench-'));
const overlapping = process.argv.includes('--overlapping');
const BATCHES = [1, 16, 256, 4096];
const VALUE = Buffer.alloc(100, 0x78);

interface Run {
  ops: number; // entries (or fsyncs for the raw baseline)
  commits: number;
  lat: number[]; // ms per commit
  secs: number;
}

function pct(xs: number[], p: number): number {
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
}

/** Runs `step` (one commit) until `seconds` pass, after a short warm-up. */
async function timed(step: () => Promise<number>): Promise<Run> {
  const warm = performance.now() + 200;
  while (performance.now() < warm) await step();
  const lat: number[] = [];
  let ops = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  while (performance.now() < end) {
    const t = performance.now();
    ops += await step();
    lat.push(performance.now() - t);
  }
  return { ops, commits: lat.length, lat, secs: (performance.now() - t0) / 1000 };
}

function freshDir(name: string): string {
  const dir = join(root, name);
  fs.rmSync(dir, { recursive: true, force: true });
  return dir;
}

async function rawFdatasync(): Promise<Run> {
  const file = join(freshDir('raw'), 'raw.bin');
  fs.mkdirSync(join(root, 'raw'), { recursive: true });
  const fd = fs.openSync(file, 'w');
  try {
    return await timed(async () => {
      fs.writeSync(fd, VALUE);
      fs.fdatasyncSync(fd);
      return 1;
    });
  } finally {
    fs.closeSync(fd);
  }
}

/** Plain lmdb-js: one put per entry (8-byte big-endian index key, the 100-byte value), then flushed. */
async function plainPuts(batch: number, options: Record<string, unknown>, name: string): Promise<Run> {
  const db = open<Buffer, Buffer>({ path: freshDir(name), keyEncoding: 'binary', encoding: 'binary', ...options });
  let index = 0;
  try {
    return await timed(async () => {
      for (let i = 0; i < batch; i++) {
        const key = Buffer.allocUnsafe(8);
        key.writeUIntBE(++index, 2, 6);
        key.writeUInt16BE(0, 0);
        void db.put(key, VALUE);
      }
      await db.flushed;
      return batch;
    });
  } finally {
    await db.close();
  }
}

function ready(entries: Entry[], commit: number): Ready {
  return {
    softState: undefined,
    hardState: { term: 1, vote: 1, commit },
    snapshotChunks: [],
    snapshot: undefined,
    compaction: undefined,
    entries,
    messages: [],
    committedEntries: [],
    readStates: [],
    failedReads: [],
  };
}

function openStore(name: string): ReplicaStore {
  const store = openReplicaStore({ path: freshDir(name), trackMetrics: true, overlappingSync: overlapping });
  store.load({ voters: [1], learners: [] });
  return store;
}

function makeEntries(from: number, n: number): Entry[] {
  return Array.from({ length: n }, (_, i) => ({ index: from + i, term: 1, type: 0 as const, data: VALUE }));
}

/** The Raft log path: one Ready of `batch` entries + hard state per persist. */
async function storeAppends(batch: number): Promise<{ run: Run; lmdb: Record<string, number> }> {
  const store = openStore(`store-${batch}`);
  let next = 1;
  try {
    const before = store.metrics();
    const run = await timed(async () => {
      const entries = makeEntries(next, batch);
      next += batch;
      await store.persist(ready(entries, next - 1));
      return batch;
    });
    const after = store.metrics();
    const delta: Record<string, number> = {};
    for (const k of ['txns', 'timeDuringTxns', 'timePageFlushes', 'timeSync', 'pagesWritten']) {
      delta[k] = (after[k] ?? 0) - (before[k] ?? 0);
    }
    return { run, lmdb: delta };
  } finally {
    await store.close();
  }
}

/** CPU time of encoding entries (checksums included), per entry, outside any I/O. */
function encodeCost(batch: number): number {
  const entries = makeEntries(1, batch);
  const rounds = Math.max(1, Math.floor(200_000 / batch));
  const t = performance.now();
  for (let r = 0; r < rounds; r++) encodeEntries(entries, () => {});
  return ((performance.now() - t) * 1000) / (rounds * batch); // µs per entry
}

/** A leader-like Ready loop: persist 16 entries, apply 16 puts; in one turn or one after the other. */
async function readyLoop(sameTurn: boolean): Promise<Run> {
  const store = openStore(`loop-${sameTurn}`);
  let next = 1;
  try {
    return await timed(async () => {
      const entries = makeEntries(next, 16);
      const commands = entries.map((e) => ({
        type: 'ops' as const,
        ops: [{ type: 'put' as const, key: Buffer.from(`key-${e.index % 50_000}`), value: VALUE }],
      }));
      next += 16;
      const persisted = store.persist(ready(entries, next - 1));
      if (sameTurn) {
        await Promise.all([persisted, store.apply(next - 1, commands)]);
      } else {
        await persisted;
        await store.apply(next - 1, commands);
      }
      return 16;
    });
  } finally {
    await store.close();
  }
}

const fmt = (n: number, d = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

async function main(): Promise<void> {
  console.log(`machine: ${machine()}`);
  console.log(`command: node --import tsx bench/storage.ts ${process.argv.slice(2).join(' ')}`.trim());
  console.log(`dir: ${root} (${fsType(root)}); ${seconds}s per measurement; store overlappingSync=${overlapping}`);
  const results: { bench: string; run: Run; batch: number }[] = [];

  const raw = await rawFdatasync();
  const rawP50 = pct(raw.lat, 0.5);
  console.log(`\nraw write(100 B)+fdatasync: ${fmt(raw.commits / raw.secs)}/s  p50 ${rawP50.toFixed(3)} ms  p99 ${pct(raw.lat, 0.99).toFixed(3)} ms`);
  results.push({ bench: 'raw-write-fdatasync', run: raw, batch: 1 });

  console.log('\n batch | plain lmdb-js (defaults)    | plain lmdb-js (store options) | store.persist (Raft log)              | ratio  | encode');
  console.log('       | entries/s    p50 ms        | entries/s    p50 ms           | entries/s    MB/s    p50 ms  p99 ms   | vs def | µs/entry');
  const verdicts: string[] = [];
  for (const batch of BATCHES) {
    const plain = await plainPuts(batch, {}, `plain-${batch}`);
    const plainOwn = await plainPuts(batch, { pageSize: 8192, overlappingSync: overlapping }, `plain-own-${batch}`);
    const { run, lmdb } = await storeAppends(batch);
    const rate = (r: Run): number => r.ops / r.secs;
    const ratio = rate(run) / rate(plain);
    const mbps = (rate(run) * VALUE.length) / 1e6;
    console.log(
      ` ${String(batch).padStart(5)} | ${fmt(rate(plain)).padStart(10)}  ${pct(plain.lat, 0.5).toFixed(3).padStart(7)}` +
        `        | ${fmt(rate(plainOwn)).padStart(10)}  ${pct(plainOwn.lat, 0.5).toFixed(3).padStart(7)}           ` +
        `| ${fmt(rate(run)).padStart(10)} ${fmt(mbps, 1).padStart(7)} ${pct(run.lat, 0.5).toFixed(3).padStart(8)} ${pct(run.lat, 0.99).toFixed(3).padStart(7)}  ` +
        `| ${ratio.toFixed(2).padStart(6)} | ${encodeCost(batch).toFixed(3)}`,
    );
    const txns = lmdb['txns'] || 1;
    console.log(
      `         where a commit's time goes (LMDB counters, per commit): in txn ${((1000 * (lmdb['timeDuringTxns'] ?? 0)) / txns).toFixed(3)} ms, ` +
        `page writes ${((1000 * (lmdb['timePageFlushes'] ?? 0)) / txns).toFixed(3)} ms, sync ${((1000 * (lmdb['timeSync'] ?? 0)) / txns).toFixed(3)} ms, ` +
        `${((lmdb['pagesWritten'] ?? 0) / txns).toFixed(1)} pages`,
    );
    results.push({ bench: `plain-lmdb-flushed-b${batch}`, run: plain, batch });
    results.push({ bench: `plain-lmdb-store-options-b${batch}`, run: plainOwn, batch });
    results.push({ bench: `store-persist-b${batch}`, run, batch });
    verdicts.push(`batch ${batch}: ${(ratio * 100).toFixed(0)}% of plain puts (target >= 80%) ${ratio >= 0.8 ? 'MET' : 'MISSED'}`);
    if (batch === 1) {
      const x = pct(run.lat, 0.5) / rawP50;
      verdicts.push(`batch 1 p50 = ${x.toFixed(2)}x one raw fdatasync (target <= 2.5x) ${x <= 2.5 ? 'MET' : 'MISSED'}`);
    }
  }

  if (process.argv.includes('--loop')) {
    console.log('\nReady loop, 16 entries persisted + 16 puts applied per Ready:');
    for (const sameTurn of [false, true]) {
      const run = await readyLoop(sameTurn);
      const label = sameTurn ? 'persist+apply in one turn' : 'persist, then apply';
      console.log(`  ${label.padEnd(26)} ${fmt(run.commits / run.secs)} Readies/s  p50 ${pct(run.lat, 0.5).toFixed(3)} ms  p99 ${pct(run.lat, 0.99).toFixed(3)} ms`);
      results.push({ bench: sameTurn ? 'ready-loop-same-turn-b16' : 'ready-loop-sequential-b16', run, batch: 16 });
    }
  }

  console.log(`\n${verdicts.join('\n')}\n`);
  for (const { bench, run, batch } of results) {
    printResult({
      bench,
      ops_per_s: Math.round(run.ops / run.secs),
      p50_ms: Number(pct(run.lat, 0.5).toFixed(4)),
      p99_ms: Number(pct(run.lat, 0.99).toFixed(4)),
      batch,
      commits_per_s: Math.round(run.commits / run.secs),
      mb_per_s: Number(((run.ops * VALUE.length) / run.secs / 1e6).toFixed(2)),
    });
  }
  if (!arg('--dir')) fs.rmSync(root, { recursive: true, force: true });
}

function fsType(dir: string): string {
  try {
    const mounts = fs.readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' '));
    const real = fs.realpathSync(dir);
    let best: string[] | undefined;
    for (const m of mounts) if (m[1] && real.startsWith(m[1]) && (!best || m[1].length > best[1]!.length)) best = m;
    return best ? `${best[2]} on ${best[0]}` : 'unknown fs';
  } catch {
    return 'unknown fs';
  }
}

await main();
