// Balance and movement of the partition assignment (counts, not timings) — the figures in
// docs/partitioning.md. Default: per-G table for the shipped algorithm. --compare also measures the
// alternatives that were considered (partition placement, assignment order, V, c, P).
// --spot measures a few configurations at G = 16 and 32 only (how P and c behave as the cluster grows).
//   node --import tsx bench/partition-movement.ts [--trials 200] [--compare] [--spot]
import { parseArgs } from 'node:util';
import { ascending, DEFAULT_LOAD_FACTOR, DEFAULT_VNODES, placeBounded } from '../src/partition/assign.ts';
import { loadXxh64, type Xxh64 } from '../src/partition/hash.ts';
import { hashString, successor, type Ring } from '../src/partition/ring.ts';
import { DEFAULT_PARTITIONS } from '../src/partition/table.ts';
import { measureMovement, type MovementStats, type Placer } from '../test/partition/movement.ts';
import { machine, printResult } from './machine.ts';

const { values } = parseArgs({ options: { trials: { type: 'string', default: '200' }, compare: { type: 'boolean', default: false }, spot: { type: 'boolean', default: false } } });
const trials = Number(values.trials);
const h64 = await loadXxh64();

// --- alternatives (the shipped one is placeBounded over evenly spaced points in ascending order) ---
const hashedPoints = (h: Xxh64, n: number): BigUint64Array => BigUint64Array.from({ length: n }, (_, p) => hashString(h, String(p)));
const byPoint = (pts: BigUint64Array): number[] =>
  Array.from(ascending(pts.length)).sort((a, b) => ((pts[a] as bigint) < (pts[b] as bigint) ? -1 : (pts[a] as bigint) > (pts[b] as bigint) ? 1 : a - b));
const gap = (ring: Ring, x: bigint): bigint => {
  const y = ring.points[successor(ring, x)] as bigint;
  return y >= x ? y - x : y + (1n << 64n) - x;
};
// Closest-to-its-virtual-node first: the partitions that overflow are those farthest from their node.
const byGap = (ring: Ring, pts: BigUint64Array): number[] => {
  const d = Array.from(pts, (x) => gap(ring, x));
  return Array.from(ascending(pts.length)).sort((a, b) => ((d[a] as bigint) < (d[b] as bigint) ? -1 : (d[a] as bigint) > (d[b] as bigint) ? 1 : a - b));
};
const hashedCache = new Map<number, BigUint64Array>();
const hashed = (n: number): BigUint64Array => hashedCache.get(n) ?? (hashedCache.set(n, hashedPoints(h64, n)).get(n) as BigUint64Array);

const PLACERS: Record<string, Placer | undefined> = {
  'even points, ascending (shipped)': undefined,
  'even points, closest first': (ring, pts, cap, g) => placeBounded(ring, pts, byGap(ring, pts), cap, g),
  'hashed points, ascending p': (ring, pts, cap, g) => placeBounded(ring, hashed(pts.length), ascending(pts.length), cap, g),
  'hashed points, ring order': (ring, pts, cap, g) => placeBounded(ring, hashed(pts.length), byPoint(hashed(pts.length)), cap, g),
  'hashed points, closest first': (ring, pts, cap, g) => placeBounded(ring, hashed(pts.length), byGap(ring, hashed(pts.length)), cap, g),
};

interface Config {
  partitions: number;
  loadFactor: number;
  vnodes: number;
  place?: Placer | undefined;
}

function sweep(cfg: Config, from = 2, to = 16): Array<MovementStats & { G: number }> {
  const rows = [];
  for (let G = from; G <= to; G++) rows.push({ G, ...measureMovement(h64, { ...cfg, groupCount: G, trials, seed: G }) });
  return rows;
}

function summary(rows: Array<MovementStats & { G: number }>): Record<string, number> {
  const mean = (f: (r: MovementStats) => number): number => rows.reduce((s, r) => s + f(r), 0) / rows.length;
  const worst = (f: (r: MovementStats) => number): number => Math.max(...rows.map(f));
  return {
    add: mean((r) => r.addMean),
    remove: mean((r) => r.removeMean),
    addWorst: worst((r) => r.addWorst),
    removeWorst: worst((r) => r.removeWorst),
    addCollateral: mean((r) => r.addCollateral),
    removeCollateral: mean((r) => r.removeCollateral),
    maxLoadMean: mean((r) => r.maxLoadMean),
    minLoadMean: mean((r) => r.minLoadMean),
    maxLoad: worst((r) => r.maxLoad),
    minLoad: Math.min(...rows.map((r) => r.minLoad)),
  };
}

const f2 = (x: number): string => x.toFixed(3);
const jsonLines: Array<Record<string, string | number>> = [];
console.log(`# node --import tsx bench/partition-movement.ts --trials ${trials}${values.compare ? ' --compare' : ''}${values.spot ? ' --spot' : ''}`);
console.log(`# ${machine()} (counts, not timings: the machine does not change them)`);
console.log(`# moved/ideal: ideal = P/(G+1) on add, P/G on remove; collateral = moves between groups that stay, /ideal;`);
console.log(`# load = partitions of a group / (P/G); means over ${trials} random group sets per G, worst = max (min for min load).\n`);

const shipped: Config = { partitions: DEFAULT_PARTITIONS, loadFactor: DEFAULT_LOAD_FACTOR, vnodes: DEFAULT_VNODES };
console.log(`P=${shipped.partitions} c=${shipped.loadFactor} V=${shipped.vnodes} (defaults)`);
console.log('  G | add moved/ideal mean worst | remove moved/ideal mean worst | collateral add remove | max load mean worst | min load mean worst');
const rows = sweep(shipped);
for (const r of rows) {
  console.log(
    `${String(r.G).padStart(3)} | ${f2(r.addMean).padStart(15)} ${f2(r.addWorst).padStart(5)} | ${f2(r.removeMean).padStart(18)} ${f2(r.removeWorst).padStart(5)} |` +
      ` ${f2(r.addCollateral).padStart(14)} ${f2(r.removeCollateral).padStart(6)} | ${f2(r.maxLoadMean).padStart(13)} ${f2(r.maxLoad)} |` +
      ` ${f2(r.minLoadMean).padStart(13)} ${f2(r.minLoad)}`,
  );
}
const s = summary(rows);
console.log('  all G:', JSON.stringify(s, (_, v: unknown) => (typeof v === 'number' ? Number(v.toFixed(3)) : v)));
jsonLines.push({ bench: 'movement', config: 'defaults', ...s });

if (values.compare) {
  const runs: Array<[string, Config]> = [
    ...Object.entries(PLACERS).map(([name, place]): [string, Config] => [name, { ...shipped, place }]),
    ...[64, 128, 512, 1024].map((vnodes): [string, Config] => [`V=${vnodes}`, { ...shipped, vnodes }]),
    ...[64, 128].map((vnodes): [string, Config] => [`V=${vnodes}, hashed points`, { ...shipped, vnodes, place: PLACERS['hashed points, ascending p'] }]),
    ...[1, 1.05, 1.1, 1.15, 1.5].map((loadFactor): [string, Config] => [`c=${loadFactor}`, { ...shipped, loadFactor }]),
    ...[256, 2048, 4096].map((partitions): [string, Config] => [`P=${partitions}`, { ...shipped, partitions }]),
  ];
  console.log('\nalternatives (G = 2..16; add/remove = mean moved/ideal; coll = collateral; max/min load = mean (worst))');
  for (const [name, cfg] of runs) {
    const x = summary(sweep(cfg));
    console.log(
      `${name.padEnd(34)} add ${f2(x.add as number)} (worst ${f2(x.addWorst as number)})  remove ${f2(x.remove as number)} (worst ${f2(x.removeWorst as number)})` +
        `  coll ${f2(x.addCollateral as number)}/${f2(x.removeCollateral as number)}` +
        `  max ${f2(x.maxLoadMean as number)} (${f2(x.maxLoad as number)})  min ${f2(x.minLoadMean as number)} (${f2(x.minLoad as number)})`,
    );
    jsonLines.push({ bench: 'movement', config: name, ...x });
  }
}
if (values.spot) {
  const runs: Array<[string, Config]> = [
    ['defaults', shipped],
    ['c=1.1', { ...shipped, loadFactor: 1.1 }],
    ['P=256', { ...shipped, partitions: 256 }],
    ['P=4096', { ...shipped, partitions: 4096 }],
  ];
  console.log('\nspot checks (add/remove = mean moved/ideal; coll = collateral; max/min load = mean (worst))');
  for (const [name, cfg] of runs) {
    for (const G of [16, 32]) {
      const x = summary(sweep(cfg, G, G));
      console.log(
        `${`${name}, G=${G}`.padEnd(20)} add ${f2(x.add as number)}  remove ${f2(x.remove as number)}  coll ${f2(x.addCollateral as number)}/${f2(x.removeCollateral as number)}` +
          `  max ${f2(x.maxLoadMean as number)} (${f2(x.maxLoad as number)})  min ${f2(x.minLoadMean as number)} (${f2(x.minLoad as number)})`,
      );
      jsonLines.push({ bench: 'movement', config: `${name}, G=${G}`, ...x });
    }
  }
}
console.log('');
for (const j of jsonLines) printResult(j);
