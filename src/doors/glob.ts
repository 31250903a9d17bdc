// Redis-style glob patterns over bytes (SCAN MATCH, CONFIG GET, COMMAND LIST FILTERBY PATTERN):
// `*` any run, `?` any byte, `[abc]`, `[^a-z]` classes, `\x` a literal x. Matching is iterative
// with one backtrack point, so a hostile pattern costs O(pattern × subject), never exponential.

export function globMatch(pattern: Uint8Array, subject: Uint8Array, nocase = false): boolean {
  let p = 0;
  let s = 0;
  let starP = -1;
  let starS = 0;
  const fold = (c: number): number => (nocase && c >= 0x41 && c <= 0x5a ? c + 32 : c);
  while (s < subject.length) {
    if (p < pattern.length) {
      const c = pattern[p]!;
      if (c === 0x2a /* * */) {
        while (p < pattern.length && pattern[p] === 0x2a) p++;
        if (p === pattern.length) return true;
        starP = p;
        starS = s;
        continue;
      }
      const step = matchOne(pattern, p, subject[s]!, fold);
      if (step > 0) {
        p += step;
        s++;
        continue;
      }
    }
    if (starP < 0) return false;
    // Let the last star swallow one more byte and retry from there.
    p = starP;
    s = ++starS;
  }
  while (p < pattern.length && pattern[p] === 0x2a) p++;
  return p === pattern.length;
}

/** Length of the pattern element at p if it matches byte b, else 0. */
function matchOne(pattern: Uint8Array, p: number, b: number, fold: (c: number) => number): number {
  const c = pattern[p]!;
  if (c === 0x3f /* ? */) return 1;
  if (c === 0x5c /* \ */ && p + 1 < pattern.length) return fold(pattern[p + 1]!) === fold(b) ? 2 : 0;
  if (c !== 0x5b /* [ */) return fold(c) === fold(b) ? 1 : 0;
  let i = p + 1;
  const negate = pattern[i] === 0x5e; /* ^ */
  if (negate) i++;
  let hit = false;
  while (i < pattern.length && pattern[i] !== 0x5d /* ] */) {
    let lo = pattern[i]!;
    if (lo === 0x5c && i + 1 < pattern.length) lo = pattern[++i]!;
    if (pattern[i + 1] === 0x2d /* - */ && i + 2 < pattern.length && pattern[i + 2] !== 0x5d) {
      let hi = pattern[i + 2]!;
      if (hi === 0x5c && i + 3 < pattern.length) hi = pattern[++i + 2]!;
      const [a, z] = lo <= hi ? [lo, hi] : [hi, lo];
      if (fold(b) >= fold(a) && fold(b) <= fold(z)) hit = true;
      i += 3;
    } else {
      if (fold(lo) === fold(b)) hit = true;
      i++;
    }
  }
  // An unclosed class runs to the end of the pattern, as in Redis.
  const len = Math.min(i + 1, pattern.length) - p;
  return hit !== negate ? len : 0;
}

/** The literal bytes every match starts with (up to the first special character). */
export function globPrefix(pattern: Uint8Array): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === 0x2a || c === 0x3f || c === 0x5b) break;
    if (c === 0x5c) {
      if (i + 1 >= pattern.length) break;
      out.push(pattern[++i]!);
    } else {
      out.push(c);
    }
  }
  return Uint8Array.from(out);
}

/** The smallest key greater than every key starting with `prefix`, or null (no such bound). */
export function prefixEnd(prefix: Uint8Array): Uint8Array | null {
  const end = Uint8Array.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  return null;
}
