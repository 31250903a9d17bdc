// Durable Raft-log appends through ReplicaStore.persist, beside two baselines measured in the same
// run: raw write+fdatasync, and plain lmdb-js puts of the same entries awaited until flushed.
// Not a test.
//   node --import tsx bench/storage.ts [--seconds 2] [--rounds 5] [--dir /path/on/the/disk] [--overlapping] [--loop]
//     --overlapping  open the store with lmdb-js overlappingSync (the measured alternative)
//     --loop         also time a Ready loop: persist then apply, in one turn vs one after the other
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'lmdb';
import type { Entry, Ready } from '../src/raft/types.ts';
import { openReplicaStore, type ReplicaStore } from '../src/storage/index.ts';
import { encodeRuns } from '../src/storage/log-codec.ts';
import { machine, printResult } from './machine.ts';

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i < 0 ? undefined : process.argv[i + 1];
};
const seconds = Number(arg('--seconds')) || 2;
const root = arg('--dir') ?? fs.mkdtempSync(join(tmpdir(), 'kvs-bench-'));
const overlapping = process.argv.includes('--overlapping');
const ROUNDS = Number(arg('--rounds')) || 5;
const BATCHES = [1, 16, 256, 4096];
const VALUE = Buffer.alloc(100, 0x78);

interface Run {
  ops: number; // entries (or fsyncs for the raw baseline)
  commits: number;
  lat: number[]; // ms per commit
  secs: number;
  /** ops/s of each round, for the median */
  rounds: number[];
}

const emptyRun = (): Run => ({ ops: 0, commits: 0, lat: [], secs: 0, rounds: [] });

function pct(xs: number[], p: number): number {
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
}

/** Median of the per-round rates: robust to a neighbour stealing the CPU or the disk for a while. */
const rate = (r: Run): number => pct(r.rounds, 0.5);

/** A contender: one commit per call, returning the entries it made durable. */
type Step = () => Promise<number>;

/**
 * Runs the contenders in interleaved rounds (A B C A B C ...), so that noise from other processes
 * on a shared machine falls on all of them alike, after one warm-up round each.
 */
async function interleaved(steps: Step[], rounds: number): Promise<Run[]> {
  const runs = steps.map(emptyRun);
  const roundMs = (seconds * 1000) / rounds;
  for (let r = -1; r < rounds; r++) {
    for (const [i, step] of steps.entries()) {
      const run = runs[i]!;
      const t0 = performance.now();
      const end = t0 + (r < 0 ? 100 : roundMs);
      let ops = 0;
      const lat: number[] = [];
      while (performance.now() < end) {
        const t = performance.now();
        ops += await step();
        lat.push(performance.now() - t);
      }
      if (r < 0) continue; // warm-up
      const secs = (performance.now() - t0) / 1000;
      run.ops += ops;
      run.commits += lat.length;
      run.lat.push(...lat);
      run.secs += secs;
      run.rounds.push(ops / secs);
    }
  }
  return runs;
}

function freshDir(name: string): string {
  const dir = join(root, name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** write(100 B) + fdatasync, appending to one file. */
function rawFdatasync(): { step: Step; close: () => void } {
  const fd = fs.openSync(join(freshDir('raw'), 'raw.bin'), 'w');
  return {
    step: async () => {
      fs.writeSync(fd, VALUE);
      fs.fdatasyncSync(fd);
      return 1;
    },
    close: () => fs.closeSync(fd),
  };
}

/** Plain lmdb-js: one put per entry (8-byte big-endian index key, the 100-byte value), then flushed. */
function plainPuts(batch: number, options: Record<string, unknown>, name: string): { step: Step; close: () => Promise<void> } {
  const db = open<Buffer, Buffer>({ path: freshDir(name), keyEncoding: 'binary', encoding: 'binary', ...options });
  let index = 0;
  return {
    step: async () => {
      for (let i = 0; i < batch; i++) {
        const key = Buffer.allocUnsafe(8);
        key.writeUInt16BE(0, 0);
        key.writeUIntBE(++index, 2, 6);
        void db.put(key, VALUE);
      }
      await db.flushed;
      return batch;
    },
    close: () => db.close(),
  };
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

/**
 * The Raft log path: one Ready of `batch` entries + hard state per persist. The entries come from
 * the Raft core in a replica, so building them is not timed: the same objects are renumbered.
 */
function storeAppends(batch: number): { step: Step; store: ReplicaStore } {
  const store = openStore(`store-${batch}`);
  const entries = makeEntries(1, batch);
  let next = 1;
  return {
    store,
    step: async () => {
      for (const e of entries) e.index = next++;
      await store.persist(ready(entries, next - 1));
      return batch;
    },
  };
}

/** CPU time of encoding entries (checksums included), per entry, outside any I/O. */
function encodeCost(batch: number): number {
  const entries = makeEntries(1, batch);
  const rounds = Math.max(1, Math.floor(200_000 / batch));
  const t = performance.now();
  for (let r = 0; r < rounds; r++) encodeRuns(entries, () => {});
  return ((performance.now() - t) * 1000) / (rounds * batch); // µs per entry
}

/** A leader-like Ready loop: persist 16 entries, apply 16 puts; in one turn or one after the other. */
function readyLoop(sameTurn: boolean): { step: Step; store: ReplicaStore } {
  const store = openStore(`loop-${sameTurn}`);
  let next = 1;
  return {
    store,
    step: async () => {
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
    },
  };
}

const fmt = (n: number, d = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

async function main(): Promise<void> {
  console.log(`machine: ${machine()}`);
  console.log(`command: node --import tsx bench/storage.ts ${process.argv.slice(2).join(' ')}`.trim());
  console.log(`dir: ${root} (${fsType(root)}); ${seconds}s per contender and batch size, in ${ROUNDS} interleaved rounds; store overlappingSync=${overlapping}`);
  console.log('rates are medians of the rounds; latencies are percentiles over all commits');
  const results: { bench: string; run: Run; batch: number }[] = [];
  const verdicts: string[] = [];
  const ms = (r: Run, p: number): string => pct(r.lat, p).toFixed(3);

  console.log('\n batch | raw write+fdatasync | plain lmdb-js, defaults | plain, store options | store.persist (Raft log)           | ratio | encode');
  console.log('       | /s      p50 ms      | entries/s   p50 ms      | entries/s   p50 ms   | entries/s   MB/s   p50 ms  p99 ms  | vs def| µs/entry');
  for (const batch of BATCHES) {
    const raw = rawFdatasync();
    const plain = plainPuts(batch, {}, `plain-${batch}`);
    const own = plainPuts(batch, { pageSize: 8192, overlappingSync: overlapping }, `plain-own-${batch}`);
    const log = storeAppends(batch);
    const before = log.store.metrics();
    const [rRaw, rPlain, rOwn, rStore] = (await interleaved([raw.step, plain.step, own.step, log.step], ROUNDS)) as [Run, Run, Run, Run];
    const after = log.store.metrics();
    raw.close();
    await plain.close();
    await own.close();
    await log.store.close();
    const ratio = rate(rStore) / rate(rPlain);
    console.log(
      ` ${String(batch).padStart(5)} | ${fmt(rate(rRaw)).padStart(6)}  ${ms(rRaw, 0.5).padStart(7)}     ` +
        `| ${fmt(rate(rPlain)).padStart(9)}  ${ms(rPlain, 0.5).padStart(7)}      | ${fmt(rate(rOwn)).padStart(9)}  ${ms(rOwn, 0.5).padStart(7)}   ` +
        `| ${fmt(rate(rStore)).padStart(9)} ${fmt((rate(rStore) * VALUE.length) / 1e6, 1).padStart(6)} ${ms(rStore, 0.5).padStart(8)} ${ms(rStore, 0.99).padStart(7)}  ` +
        `| ${ratio.toFixed(2).padStart(5)} | ${encodeCost(batch).toFixed(3)}`,
    );
    const d = (k: string): number => (after[k] ?? 0) - (before[k] ?? 0);
    const txns = d('txns') || 1;
    console.log(
      `         store, per commit (LMDB counters): txn open ${((1000 * d('timeDuringTxns')) / txns).toFixed(3)} ms, ` +
        `page writes ${((1000 * d('timePageFlushes')) / txns).toFixed(3)} ms, ${(d('pagesWritten') / txns).toFixed(1)} pages written`,
    );
    results.push({ bench: `raw-write-fdatasync-b${batch}`, run: rRaw, batch: 1 });
    results.push({ bench: `plain-lmdb-flushed-b${batch}`, run: rPlain, batch });
    results.push({ bench: `plain-lmdb-store-options-b${batch}`, run: rOwn, batch });
    results.push({ bench: `store-persist-b${batch}`, run: rStore, batch });
    verdicts.push(`batch ${batch}: store ${(ratio * 100).toFixed(0)}% of plain puts (target >= 80%): ${ratio >= 0.8 ? 'met' : 'MISSED'}`);
    if (batch === 1) {
      const x = pct(rStore.lat, 0.5) / pct(rRaw.lat, 0.5);
      verdicts.push(`batch 1: store p50 = ${x.toFixed(2)}x raw fdatasync p50 (target <= 2.5x): ${x <= 2.5 ? 'met' : 'MISSED'}`);
    }
  }

  if (process.argv.includes('--loop')) {
    console.log('\nReady loop, 16 entries persisted + 16 puts applied per Ready:');
    const loops = [readyLoop(false), readyLoop(true)];
    const runs = await interleaved(loops.map((l) => l.step), ROUNDS);
    for (const [i, run] of runs.entries()) {
      const label = i === 1 ? 'persist+apply in one turn' : 'persist, then apply';
      console.log(`  ${label.padEnd(26)} ${fmt(rate(run) / 16)} Readies/s  p50 ${ms(run, 0.5)} ms  p99 ${ms(run, 0.99)} ms`);
      results.push({ bench: i === 1 ? 'ready-loop-same-turn-b16' : 'ready-loop-sequential-b16', run, batch: 16 });
      await loops[i]!.store.close();
    }
  }

  console.log(`\n${verdicts.join('\n')}\n`);
  for (const { bench, run, batch } of results) {
    printResult({
      bench,
      ops_per_s: Math.round(rate(run)),
      p50_ms: Number(pct(run.lat, 0.5).toFixed(4)),
      p99_ms: Number(pct(run.lat, 0.99).toFixed(4)),
      batch,
      mb_per_s: Number(((rate(run) * VALUE.length) / 1e6).toFixed(2)),
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
