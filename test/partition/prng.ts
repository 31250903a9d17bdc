// Seeded PRNG (mulberry32) so every property test and measurement replays exactly from its seed.

export interface Prng {
  /** Uniform in [0, 2^32). */
  u32(): number;
  /** Uniform integer in [0, n). */
  below(n: number): number;
}

export function prng(seed: number): Prng {
  let s = seed >>> 0;
  const u32 = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  return { u32, below: (n) => Math.floor((u32() / 2 ** 32) * n) };
}

/** `count` distinct random u32 group ids, in random order. */
export function randomGroups(rng: Prng, count: number): number[] {
  const ids = new Set<number>();
  while (ids.size < count) ids.add(rng.u32());
  return [...ids];
}
