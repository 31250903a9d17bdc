// Throughput of key → partition hashing (single and batch, 16-byte keys) and of computing an
// assignment (P = 1024, G = 3..16). Not a test: numbers depend on the machine.
//   node --import tsx bench/partition.ts [--seconds 0.5]
import { parseArgs } from 'node:util';
import xxhash from 'xxhash-wasm';
import { assignOwners } from '../src/partition/assign.ts';
import { createPartitioner, loadXxh64 } from '../src/partition/hash.ts';
import { DEFAULT_PARTITIONS } from '../src/partition/table.ts';
import { machine, printResult } from './machine.ts';
import { prng, randomGroups } from '../test/partition/prng.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '0.5' } } });
const seconds = Number(values.seconds);

console.log(`# node --import tsx bench/partition.ts --seconds ${seconds}`);
console.log(`# ${machine()}`);

/** Runs `round` (which does `ops` operations) for ~`seconds`, 5 times after warm-up; returns the median ops/s. */
function measure(ops: number, round: () => void): number {
  for (let i = 0; i < 3; i++) round();
  const rates: number[] = [];
  for (let r = 0; r < 5; r++) {
    let done = 0;
    const t0 = process.hrtime.bigint();
    let dt = 0;
    while (dt < (seconds * 1e9) / 5) {
      round();
      done += ops;
      dt = Number(process.hrtime.bigint() - t0);
    }
    rates.push(done / (dt / 1e9));
  }
  return rates.sort((a, b) => a - b)[2] as number;
}

const results: Array<{ bench: string; ops_per_s: number }> = [];
function report(bench: string, opsPerS: number): void {
  results.push({ bench, ops_per_s: Math.round(opsPerS) });
  const human = opsPerS >= 1e5 ? `${(opsPerS / 1e6).toFixed(2)} M keys/s` : `${opsPerS.toFixed(0)} /s = ${(1e3 / opsPerS).toFixed(2)} ms each`;
  console.log(`${bench.padEnd(46)} ${human}`);
}

// --- hashing ---
const rng = prng(42);
const N = 4096;
const keys = Array.from({ length: N }, () => Uint8Array.from({ length: 16 }, () => rng.below(256)));
const part = await createPartitioner(DEFAULT_PARTITIONS);
const out = new Uint32Array(N);
let sink = 0;

report('partitionOf, 16-byte keys', measure(N, () => {
  for (let i = 0; i < N; i++) sink ^= part.partitionOf(keys[i] as Uint8Array);
}));
for (const size of [16, 256, 4096]) {
  const batches = Array.from({ length: N / size }, (_, b) => keys.slice(b * size, (b + 1) * size));
  report(`partitionsOf batch ${size}, 16-byte keys`, measure(N, () => {
    for (const batch of batches) sink ^= part.partitionsOf(batch, out)[0] as number;
  }));
}
const p1000 = await createPartitioner(1000);
report('partitionOf, P=1000 (bigint %), 16-byte keys', measure(N, () => {
  for (let i = 0; i < N; i++) sink ^= p1000.partitionOf(keys[i] as Uint8Array);
}));
const h64 = await loadXxh64();
report('xxh64 only (library h64Raw), 16-byte keys', measure(N, () => {
  for (let i = 0; i < N; i++) sink ^= Number(h64(keys[i] as Uint8Array) & 1n);
}));

// Experiment, not used by src/: reach past xxhash-wasm's API to its WASM instance (it exposes neither
// the instance nor its memory), copy the whole batch into WASM memory at once and call xxh64 per key.
// Shows what the library's wrapper costs; see docs/partitioning.md.
const internals = await captureInstance();
if (internals) {
  const { mem, xxh64 } = internals;
  const mask = BigInt(DEFAULT_PARTITIONS - 1);
  report('experiment: raw instance, one copy per batch', measure(N, () => {
    const heap = new Uint8Array(mem.buffer);
    for (let i = 0, off = 0; i < N; i++, off += 16) heap.set(keys[i] as Uint8Array, off);
    for (let i = 0; i < N; i++) out[i] = Number(xxh64(16 * i, 16, 0n) & mask);
    sink ^= out[0] as number;
  }));
  report('experiment: raw instance, one copy per key', measure(N, () => {
    const heap = new Uint8Array(mem.buffer);
    for (let i = 0; i < N; i++) {
      heap.set(keys[i] as Uint8Array, 0);
      out[i] = Number(xxh64(0, 16, 0n) & mask);
    }
    sink ^= out[0] as number;
  }));
}

// --- assignment ---
for (let G = 3; G <= 16; G++) {
  const groups = randomGroups(rng, G);
  report(`assign P=${DEFAULT_PARTITIONS} G=${G}`, measure(1, () => {
    sink ^= assignOwners(h64, { partitions: DEFAULT_PARTITIONS, groups })[0] as number;
  }));
}

console.log(`# (sink ${sink & 1})\n`);
for (const r of results) printResult(r);

// Typed locally: the project's lib (ES2022, no DOM) does not declare the WebAssembly global.
interface Internals {
  mem: { buffer: ArrayBuffer };
  xxh64: (ptr: number, len: number, seed: bigint) => bigint;
}
type Instantiate = (...args: unknown[]) => Promise<{ instance: { exports: Record<string, unknown> } }>;

/** Grabs the instance xxhash-wasm creates; verified against the public API, undefined if anything differs. */
async function captureInstance(): Promise<Internals | undefined> {
  const wasm = (globalThis as unknown as { WebAssembly: { instantiate: Instantiate } }).WebAssembly;
  const original = wasm.instantiate;
  let exports: Record<string, unknown> = {};
  // xxhash() calls instantiate synchronously before its first await, so the patch is live only for that call.
  wasm.instantiate = async (...args) => {
    const r = await original(...args);
    exports = r.instance.exports;
    return r;
  };
  const pending = xxhash();
  wasm.instantiate = original;
  const api = await pending;
  const { mem, xxh64 } = exports as Partial<Internals>;
  if (!(mem?.buffer instanceof ArrayBuffer) || typeof xxh64 !== 'function') return undefined;
  const probe = new TextEncoder().encode('The quick brown fox jumps over the lazy dog');
  new Uint8Array(mem.buffer).set(probe, 0);
  return BigInt.asUintN(64, xxh64(0, probe.length, 0n)) === api.h64Raw(probe) ? { mem, xxh64 } : undefined;
}
