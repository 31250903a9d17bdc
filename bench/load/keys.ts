// Key choice and the preallocated key space. Keys and values are built once, into one buffer each,
// so drivers copy bytes from them instead of building strings or buffers per request.

/** mulberry32: a small seeded PRNG, uniform doubles in [0, 1). Seeded so runs are repeatable. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type KeyDist = 'uniform' | 'zipf';

export interface KeyChooser {
  /** The next key index in [0, n). */
  next(): number;
}

export function uniformKeys(n: number, random: () => number): KeyChooser {
  return { next: () => Math.floor(random() * n) };
}

/**
 * YCSB's zipfian generator (Gray et al., "Quickly generating billion-record synthetic databases"):
 * rank r is drawn with probability ∝ 1/(r+1)^θ. Ranks go through a fixed random permutation
 * ("scrambled", as YCSB does) so the hot keys are spread over the key space, not keys 0, 1, 2…,
 * which matters once keys are hashed to shard groups.
 */
export function zipfKeys(n: number, theta: number, random: () => number, permuteSeed = 7): KeyChooser {
  let zetan = 0;
  for (let i = 1; i <= n; i++) zetan += 1 / i ** theta;
  const zeta2 = 1 + 0.5 ** theta;
  const alpha = 1 / (1 - theta);
  const eta = (1 - (2 / n) ** (1 - theta)) / (1 - zeta2 / zetan);
  const half = 1 + 0.5 ** theta;
  const perm = permutation(n, rng(permuteSeed));
  return {
    next: () => {
      const u = random();
      const uz = u * zetan;
      let r: number;
      if (uz < 1) r = 0;
      else if (uz < half) r = 1;
      else r = Math.min(n - 1, Math.floor(n * (eta * u - eta + 1) ** alpha));
      return perm[r]!;
    },
  };
}

/** Probability of the most popular key under zipfKeys (for tests and the docs). */
export function zipfTopProbability(n: number, theta: number): number {
  let zetan = 0;
  for (let i = 1; i <= n; i++) zetan += 1 / i ** theta;
  return 1 / zetan;
}

function permutation(n: number, random: () => number): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}

export function keyChooser(dist: KeyDist, n: number, seed: number): KeyChooser {
  const r = rng(seed);
  return dist === 'zipf' ? zipfKeys(n, 0.99, r) : uniformKeys(n, r);
}

/**
 * `count` keys of exactly `size` bytes ("k" + zero-padded decimal index, ASCII so redis-cli and
 * etcdctl show them readably) in one buffer, and VALUE_VARIANTS values of `valueSize` bytes.
 */
export class KeySpace {
  readonly keys: Buffer;
  readonly values: Buffer;
  static readonly VALUE_VARIANTS = 16;

  constructor(
    readonly count: number,
    readonly keySize: number,
    readonly valueSize: number,
  ) {
    const digits = String(Math.max(0, count - 1)).length;
    if (keySize < digits + 1) throw new RangeError(`--key-size ${keySize} is too small for ${count} keys (needs ${digits + 1})`);
    this.keys = Buffer.allocUnsafe(count * keySize);
    for (let i = 0; i < count; i++) this.keys.write(`k${String(i).padStart(keySize - 1, '0')}`, i * keySize, 'latin1');
    // Printable, varied bytes: compressible enough to be realistic, not a single repeated byte.
    const r = rng(99);
    this.values = Buffer.allocUnsafe(KeySpace.VALUE_VARIANTS * valueSize);
    for (let i = 0; i < this.values.length; i++) this.values[i] = 0x21 + Math.floor(r() * 94);
  }

  keyOffset(i: number): number {
    return i * this.keySize;
  }

  valueOffset(i: number): number {
    return (i % KeySpace.VALUE_VARIANTS) * this.valueSize;
  }

  /** Views, for drivers whose library wants one Buffer per field (gRPC); built once. */
  keyViews(): Buffer[] {
    return Array.from({ length: this.count }, (_, i) => this.keys.subarray(i * this.keySize, (i + 1) * this.keySize));
  }

  valueViews(): Buffer[] {
    return Array.from({ length: KeySpace.VALUE_VARIANTS }, (_, i) => this.values.subarray(i * this.valueSize, (i + 1) * this.valueSize));
  }
}
