// The simulated network: per-message delay, loss, duplication and reordering, and directed link
// cuts for symmetric and one-way partitions. A link is FIFO, like the TCP connections between real
// replicas, except for the faults: a held-back message (slowP) and a duplicate may be overtaken.
// A message is lost if its link is cut when it is sent or when it would arrive.
import type { Message, NodeId } from '../../src/raft/types.ts';
import type { Rng } from './prng.ts';

export interface LinkFaults {
  loss: number;
  duplicate: number;
  delayMin: number;
  delayMax: number;
  /** Probability that a message is held back, and for how long at most (reordering). */
  slowP: number;
  slowMax: number;
}

export const calmLinks: LinkFaults = { loss: 0, duplicate: 0, delayMin: 0.05, delayMax: 0.3, slowP: 0, slowMax: 0 };

export type Deliver = (at: number, m: Message, copy: number) => void;

export class Network {
  faults: LinkFaults = calmLinks;
  private cut = new Set<number>();
  /** Per directed link: when its last in-order message arrives. */
  private tail = new Map<number, number>();

  constructor(private readonly rng: Rng) {}

  /** Schedules the deliveries of one sent message (none, one, or two copies). */
  send(now: number, m: Message, deliver: Deliver, dropped: (m: Message, why: string) => void): void {
    if (this.isCut(m.from, m.to)) return dropped(m, 'cut');
    const f = this.faults;
    const copies = this.rng.chance(f.duplicate) ? 2 : 1;
    for (let c = 0; c < copies; c++) {
      if (this.rng.chance(f.loss)) {
        dropped(m, 'lost');
        continue;
      }
      const link = m.from * 1024 + m.to;
      let at = now + this.rng.range(f.delayMin, f.delayMax);
      if (c === 0 && !this.rng.chance(f.slowP)) {
        at = Math.max(at, (this.tail.get(link) ?? 0) + 1e-6);
        this.tail.set(link, at);
      } else {
        at += this.rng.range(0, f.slowMax);
      }
      deliver(at, m, c);
    }
  }

  isCut(from: NodeId, to: NodeId): boolean {
    return this.cut.has(from * 1024 + to);
  }

  cutLink(from: NodeId, to: NodeId): void {
    this.cut.add(from * 1024 + to);
  }

  /** Cuts every link between the two sides, in both directions or only from `a` to `b`. */
  partition(a: readonly NodeId[], b: readonly NodeId[], oneWay: boolean): void {
    for (const x of a) {
      for (const y of b) {
        this.cutLink(x, y);
        if (!oneWay) this.cutLink(y, x);
      }
    }
  }

  healLinks(): void {
    this.cut.clear();
  }

  get partitioned(): boolean {
    return this.cut.size > 0;
  }
}
