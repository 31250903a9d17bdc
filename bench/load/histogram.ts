// HDR histogram of latencies in microseconds: 3 significant digits from 1 µs to ~35 minutes in a
// fixed array of counters, so recording is one index computation and an increment (no allocation
// on the hot path), and histograms from several generator processes merge by adding counters.
// Index math follows HdrHistogram (Gil Tene): buckets double in size, each split into 2048
// sub-buckets, the lower half of every bucket after the first overlapping the previous one.

const SUB_BUCKET_COUNT = 2048; // 2 * 10^3 rounded up to a power of two: 3 significant digits
const SUB_BUCKET_HALF_MAGNITUDE = 10; // log2(SUB_BUCKET_COUNT) - 1
const SUB_BUCKET_HALF = SUB_BUCKET_COUNT >> 1;
const SUB_BUCKET_MASK = SUB_BUCKET_COUNT - 1;
/** Largest value kept exactly enough; larger values are clamped (2^31 - 1 µs ≈ 35 min). */
export const MAX_TRACKABLE = 0x7fff_ffff;
const BUCKET_COUNT = 21; // SUB_BUCKET_COUNT << 20 = 2^31 > MAX_TRACKABLE
const COUNTS_LENGTH = (BUCKET_COUNT + 1) * SUB_BUCKET_HALF;

function countsIndex(value: number): number {
  // 31 - clz32 = floor(log2); the mask keeps values below SUB_BUCKET_COUNT in bucket 0.
  const bucket = 31 - Math.clz32(value | SUB_BUCKET_MASK) - SUB_BUCKET_HALF_MAGNITUDE;
  const sub = value >>> bucket;
  return ((bucket + 1) << SUB_BUCKET_HALF_MAGNITUDE) + (sub - SUB_BUCKET_HALF);
}

function lowestAt(index: number): number {
  let bucket = (index >> SUB_BUCKET_HALF_MAGNITUDE) - 1;
  let sub = (index & (SUB_BUCKET_HALF - 1)) + SUB_BUCKET_HALF;
  if (bucket < 0) {
    sub -= SUB_BUCKET_HALF;
    bucket = 0;
  }
  return sub * 2 ** bucket;
}

/** Highest value that lands in the same counter as lowestAt(index) (what HdrHistogram reports). */
function highestAt(index: number): number {
  const low = lowestAt(index);
  const bucket = Math.max(0, (index >> SUB_BUCKET_HALF_MAGNITUDE) - 1);
  return low + 2 ** bucket - 1;
}

export class Histogram {
  readonly counts = new Float64Array(COUNTS_LENGTH);
  total = 0;
  min = Infinity;
  max = 0;
  private sum = 0;

  /** Records one value in µs (fractions are truncated; negatives count as 0). */
  record(us: number): void {
    let v = us > 0 ? Math.trunc(us) : 0;
    if (v > MAX_TRACKABLE) v = MAX_TRACKABLE;
    this.counts[countsIndex(v)]!++;
    this.total++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }

  get mean(): number {
    return this.total === 0 ? 0 : this.sum / this.total;
  }

  /** The value at percentile p (0..100]: the smallest recorded value with at least p% at or below it. */
  percentile(p: number): number {
    if (this.total === 0) return 0;
    const rank = Math.max(1, Math.ceil((Math.min(100, p) / 100) * this.total));
    let seen = 0;
    for (let i = 0; i < COUNTS_LENGTH; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(highestAt(i), this.max);
    }
    return this.max;
  }

  add(other: Histogram): void {
    for (let i = 0; i < COUNTS_LENGTH; i++) this.counts[i]! += other.counts[i]!;
    this.total += other.total;
    this.sum += other.sum;
    this.min = Math.min(this.min, other.min);
    this.max = Math.max(this.max, other.max);
  }

  /** Compact form for IPC between generator processes: only non-zero counters. */
  toJSON(): SerializedHistogram {
    const idx: number[] = [];
    const cnt: number[] = [];
    for (let i = 0; i < COUNTS_LENGTH; i++) {
      if (this.counts[i]! > 0) {
        idx.push(i);
        cnt.push(this.counts[i]!);
      }
    }
    return { idx, cnt, total: this.total, sum: this.sum, min: this.min === Infinity ? 0 : this.min, max: this.max };
  }

  static fromJSON(s: SerializedHistogram): Histogram {
    const h = new Histogram();
    s.idx.forEach((i, k) => (h.counts[i] = s.cnt[k]!));
    h.total = s.total;
    h.sum = s.sum;
    h.min = s.total === 0 ? Infinity : s.min;
    h.max = s.max;
    return h;
  }
}

export interface SerializedHistogram {
  idx: number[];
  cnt: number[];
  total: number;
  sum: number;
  min: number;
  max: number;
}
