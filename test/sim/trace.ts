// The event trace. Every event feeds a 64-bit digest (two FNV-1a lanes) so any two runs can be
// compared cheaply; the readable lines are only built when asked for (--trace), since formatting
// every event would cost more than simulating it.

export class Trace {
  readonly lines: string[] | undefined;
  private h1 = 0x811c9dc5;
  private h2 = 0xcbf29ce4;
  events = 0;

  constructor(readable: boolean, private readonly stream?: (line: string) => void) {
    this.lines = readable && stream === undefined ? [] : undefined;
  }

  get readable(): boolean {
    return this.lines !== undefined || this.stream !== undefined;
  }

  /** Records an event's identity (time and a few small integers) in the digest. */
  mark(at: number, a: number, b = 0, c = 0, d = 0): void {
    this.events++;
    this.mix(Math.round(at * 1e6));
    this.mix(a);
    this.mix(b);
    this.mix(c);
    this.mix(d);
  }

  /** A readable line; `text` is only called when the trace is readable. */
  line(at: number, text: () => string): void {
    if (!this.readable) return;
    const s = `${at.toFixed(3).padStart(9)}  ${text()}`;
    if (this.stream) this.stream(s);
    else this.lines?.push(s);
  }

  get digest(): string {
    return (this.h1 >>> 0).toString(16).padStart(8, '0') + (this.h2 >>> 0).toString(16).padStart(8, '0');
  }

  private mix(x: number): void {
    // Split into 32-bit halves so large integers (scaled times) are mixed whole.
    const lo = x >>> 0;
    const hi = Math.floor(x / 4294967296) >>> 0;
    for (const w of [lo, hi]) {
      this.h1 = Math.imul(this.h1 ^ w, 0x01000193);
      this.h2 = Math.imul(this.h2 ^ ((w * 31) >>> 0), 0x01000193) ^ (this.h1 >>> 7);
    }
  }
}
