// A recorded client workload for the container tests: closed-loop clients doing puts, linearizable
// gets and CASes on a few keys (the history the linearizability checker reads), plus writes of
// unique keys (each acknowledged one must stay readable). It counts failed requests (a call the
// client gave up on: every retry within its deadline failed) and the longest time one call took
// (a pause a client saw), and keeps the failures' messages for the report.
import { KvsError, type KvsClient } from '../../src/client/client.ts';
import type { Operation } from '../lin/history.ts';

const dec = new TextDecoder();

export interface WorkloadFigures {
  requests: number;
  failures: number;
  /** Longest call, retries included (ms). */
  longestCallMs: number;
  acknowledgedWrites: number;
  failureMessages: string[];
}

export class RecordedWorkload {
  readonly history: Operation[] = [];
  readonly acked = new Map<string, string>();
  private readonly t0 = performance.now();
  private running = false;
  private loops: Promise<void>[] = [];
  private requests = 0;
  private failures: string[] = [];
  private longestCallMs = 0;

  constructor(
    private readonly clients: KvsClient[],
    private readonly keys: string[],
    private readonly seed: number,
    /** Prefix of the unique keys the acknowledged-writes loop writes. */
    private readonly uniquePrefix: string,
  ) {}

  start(): void {
    this.running = true;
    this.loops = [...this.clients.map((c, i) => this.registerLoop(c, i + 1)), this.uniqueLoop(this.clients[0]!)];
  }

  get completed(): number {
    return this.requests - this.failures.length;
  }

  /** Waits until `more` requests have completed from now (bounded), instead of a fixed sleep. */
  async progress(more: number, boundMs = 60_000): Promise<void> {
    const want = this.completed + more;
    const until = performance.now() + boundMs;
    while (this.completed < want) {
      if (performance.now() > until) throw new Error(`only ${this.completed} of ${want} requests completed within ${boundMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Figures since the last reset (or the start). */
  figures(): WorkloadFigures {
    return { requests: this.requests, failures: this.failures.length, longestCallMs: Math.round(this.longestCallMs), acknowledgedWrites: this.acked.size, failureMessages: this.failures.slice(0, 5) };
  }

  resetFigures(): void {
    this.requests = 0;
    this.failures = [];
    this.longestCallMs = 0;
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  private now(): number {
    return Math.round((performance.now() - this.t0) * 1000);
  }

  /** Runs one request, counting it; the error (a KvsError) is rethrown for the caller to record. */
  private async timed<T>(f: () => Promise<T>): Promise<T> {
    const t = performance.now();
    this.requests++;
    try {
      return await f();
    } catch (e) {
      if (!(e instanceof KvsError)) throw e;
      this.failures.push(`${e.code}: ${e.message}`);
      throw e;
    } finally {
      this.longestCallMs = Math.max(this.longestCallMs, performance.now() - t);
    }
  }

  private async registerLoop(c: KvsClient, id: number): Promise<void> {
    let rnd = this.seed * 7919 + id;
    const next = (n: number): number => {
      rnd = (rnd * 1103515245 + 12345) % 2147483648;
      return rnd % n;
    };
    for (let n = 0; this.running; n++) {
      const key = this.keys[next(this.keys.length)]!;
      const value = `c${id}-${n}`;
      const kind = next(10);
      const op: Operation = { clientId: id, op: kind < 4 ? 'put' : kind < 8 ? 'get' : 'cas', key, call: this.now() };
      if (op.op === 'put') op.value = value;
      this.history.push(op);
      try {
        if (op.op === 'put') await this.timed(() => c.put(key, value));
        else if (op.op === 'get') op.output = ((v) => (v === null ? null : dec.decode(v)))(await this.timed(() => c.get(key)));
        else {
          const cur = await this.timed(() => c.get(key, { consistency: 'stale' }));
          op.expected = cur === null ? null : dec.decode(cur);
          op.value = value;
          op.output = (await this.timed(() => c.cas(key, op.expected!, value))).ok;
        }
        op.ret = this.now();
      } catch (e) {
        if (!(e instanceof KvsError)) throw e;
        // Unknown outcome: the op stays pending (it may or may not have applied); a read changed nothing.
        if (op.op === 'get') this.history.splice(this.history.indexOf(op), 1);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  private async uniqueLoop(c: KvsClient): Promise<void> {
    for (let i = 0; this.running; i++) {
      const key = `${this.uniquePrefix}-${i}`;
      try {
        await this.timed(() => c.put(key, `v${i}`));
        this.acked.set(key, `v${i}`);
      } catch (e) {
        if (!(e instanceof KvsError)) throw e;
      }
    }
  }
}
