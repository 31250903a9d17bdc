// A recorded client workload for fault tests: closed-loop clients doing puts, gets and CASes on a
// few keys, with every call and return time, checked for linearizability afterwards.
import assert from 'node:assert/strict';
import { KvsError, type KvsClient } from '../../src/client/client.ts';
import { checkHistory } from '../lin/check.ts';
import type { Operation } from '../lin/history.ts';
import { Rng } from '../sim/prng.ts';

const dec = new TextDecoder();

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Closed-loop clients doing puts, gets and CASes on a few keys, recording what they saw. */
export class Workload {
  readonly history: Operation[] = [];
  private running = true;
  private readonly t0 = performance.now();
  private loops: Promise<void>[] = [];
  lastOkAt = 0;

  constructor(
    private readonly clients: KvsClient[],
    private readonly keys: string[],
    private readonly seed: number,
  ) {}

  start(): void {
    this.loops = this.clients.map((c, i) => this.loop(c, i + 1));
  }

  /** Completed operations so far. */
  get completed(): number {
    return this.history.filter((o) => o.ret !== undefined).length;
  }

  /**
   * Waits until `more` operations have completed from now (bounded): a history long enough to mean
   * something, however slow the machine, instead of a fixed sleep.
   */
  async progress(more: number, boundMs = 30_000): Promise<void> {
    const want = this.completed + more;
    const until = performance.now() + boundMs;
    while (this.completed < want) {
      if (performance.now() > until) throw new Error(`only ${this.completed} of ${want} operations completed within ${boundMs} ms`);
      await sleep(20);
    }
  }

  async stop(): Promise<Operation[]> {
    this.running = false;
    await Promise.all(this.loops);
    return this.history;
  }

  private now(): number {
    return Math.round((performance.now() - this.t0) * 1000);
  }

  private async loop(c: KvsClient, id: number): Promise<void> {
    // Not an LCG's `rnd % n`: its low bits cycle, so it reached 4 of 8 keys (an outside review).
    const rng = new Rng(this.seed * 7919 + id);
    const next = (n: number): number => rng.int(n);
    let n = 0;
    while (this.running) {
      const key = this.keys[next(this.keys.length)]!;
      const value = `c${id}-${n++}`;
      const kind = next(10);
      const op: Operation = { clientId: id, op: kind < 4 ? 'put' : kind < 8 ? 'get' : 'cas', key, call: this.now() };
      if (op.op === 'put') op.value = value;
      this.history.push(op);
      try {
        if (op.op === 'put') await c.put(key, value);
        else if (op.op === 'get') op.output = ((v) => (v === null ? null : dec.decode(v)))(await c.get(key));
        else {
          const cur = (await c.get(key, { consistency: 'stale' })) ?? null;
          op.expected = cur === null ? null : dec.decode(cur);
          op.value = value;
          op.output = (await c.cas(key, op.expected, value)).ok;
        }
        op.ret = this.now();
        this.lastOkAt = performance.now();
      } catch (e) {
        if (!(e instanceof KvsError)) throw e;
        // Unknown outcome (timeout, unreachable): the op stays pending, it may or may not apply.
        if (op.op === 'get') this.history.splice(this.history.indexOf(op), 1); // a failed read changed nothing
        await sleep(20);
      }
    }
  }
}

export function assertLinearizable(history: Operation[], what: string): void {
  const r = checkHistory(history);
  assert.notEqual(r.verdict, 'illegal', `${what}: history is not linearizable\n${r.text}`);
  assert.ok(history.filter((o) => o.ret !== undefined).length > 20, `${what}: too few operations completed`);
}

