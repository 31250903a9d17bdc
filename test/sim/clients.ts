// Simulated clients. Each runs one operation at a time against the node it believes leads:
// writes (and some gets) go through the log, reads through ReadIndex (at the leader or any
// follower) or the leader's lease. The history records what each client saw, for the
// linearizability checker:
//  - an operation whose answer arrived is complete;
//  - a write that entered some log but whose fate the client never learned (timeout, crash, the
//    node moved past it by a snapshot) is pending: it may or may not have happened;
//  - a write the node refused, or whose log slot the node filled with another entry, never happened
//    and is left out; so is a read that got no answer (reads change nothing).
import type { Operation } from '../lin/history.ts';
import type { NodeId } from '../../src/raft/types.ts';
import { encodeCommand, encodeReadCtx, type OpName } from './command.ts';
import type { Host } from './host.ts';
import type { ApplyOutcome } from './kv.ts';
import type { Rng } from './prng.ts';
import type { Profile } from './profile.ts';

export interface ClientWorld {
  readonly now: number;
  readonly ids: readonly NodeId[];
  schedule(at: number, run: () => void): void;
  host(id: NodeId): Host | undefined;
  touch(h: Host): void;
  log(text: () => string): void;
  mark(a: number, b?: number, c?: number, d?: number): void;
}

type Mode = 'log' | 'index' | 'lease';

interface Attempt {
  client: Client;
  op: Operation;
  seq: number;
  mode: Mode;
  deadline: number;
  /** Set once a node accepted the proposal. */
  at?: { node: NodeId; index: number; term: number };
  /** Reads: the current attempt's context and node. */
  ctx?: string;
  readNode?: NodeId;
  tries: number;
}

interface Client {
  id: number;
  seq: number;
  guess: NodeId;
  busy: Attempt | undefined;
  /** Last value this client saw or wrote per key: good guesses for cas. */
  seen: Map<string, string | null>;
}

const dec = new TextDecoder();

export class Clients {
  readonly history: Operation[] = [];
  /** Completed operations, by kind of path, for the summary. */
  readonly done = { log: 0, index: 0, lease: 0, pending: 0 };
  private readonly clients: Client[] = [];
  private readonly proposals = new Map<NodeId, Map<number, Attempt>>();
  private readonly reads = new Map<string, Attempt>();
  private stopped = false;

  constructor(
    private readonly world: ClientWorld,
    private readonly rng: Rng,
    private readonly profile: Profile,
  ) {
    for (let i = 1; i <= profile.clients; i++) {
      this.clients.push({ id: i, seq: 0, guess: rng.pick(world.ids), busy: undefined, seen: new Map() });
    }
  }

  start(): void {
    for (const c of this.clients) this.world.schedule(this.rng.range(0, 3), () => this.issue(c));
  }

  /** No new operations; those in flight end as pending (writes) or are dropped (reads). */
  stop(): void {
    this.stopped = true;
    for (const c of this.clients) if (c.busy) this.giveUp(c.busy, 'stopped');
  }

  // ---- Hooks from the hosts --------------------------------------------------------------------

  applied(h: Host, index: number, term: number, outcome: ApplyOutcome): void {
    const a = this.proposals.get(h.id)?.get(index);
    if (a === undefined) return;
    this.proposals.get(h.id)?.delete(index);
    if (a.client.busy !== a) return;
    const at = a.at as { term: number };
    if (at.term !== term) {
      // Another entry took this slot: ours can never be committed (no one re-proposes it).
      this.world.log(() => `c${a.client.id} #${a.seq} lost: n${h.id} applied another entry at ${index}`);
      return this.finish(a);
    }
    if (outcome.kind !== 'op' || outcome.clientId !== a.client.id || outcome.seq !== a.seq) {
      throw new Error(`harness: n${h.id} applied ${index}/t${term} as ${JSON.stringify(outcome)}, expected c${a.client.id} #${a.seq}`);
    }
    a.op.ret = this.world.now;
    a.op.note = `log n${h.id} ${index}/t${term}`;
    if (a.op.op === 'get' || a.op.op === 'cas') a.op.output = outcome.result;
    this.complete(a);
  }

  /** The node moved past these indices without applying them one by one: their fate is unknown. */
  installed(h: Host, index: number): void {
    for (const [i, a] of this.proposals.get(h.id) ?? []) {
      if (i > index) continue;
      this.proposals.get(h.id)?.delete(i);
      if (a.client.busy === a) this.giveUp(a, `n${h.id} installed a snapshot past it`);
    }
  }

  crashed(h: Host): void {
    for (const a of this.proposals.get(h.id)?.values() ?? []) if (a.client.busy === a) this.giveUp(a, `n${h.id} crashed`);
    this.proposals.delete(h.id);
    for (const c of this.clients) {
      const a = c.busy;
      if (a && a.readNode === h.id && a.ctx !== undefined) this.giveUp(a, `n${h.id} crashed`);
    }
  }

  readReady(h: Host, ctx: Uint8Array): void {
    const a = this.reads.get(dec.decode(ctx));
    if (a === undefined || a.client.busy !== a || a.readNode !== h.id) return;
    this.reads.delete(a.ctx as string);
    a.op.ret = this.world.now;
    a.op.note = `${a.mode === 'lease' ? 'lease read' : 'read index'} at n${a.readNode}, applied ${h.disk.kv.applied}`;
    a.op.output = h.disk.kv.data.get(a.op.key) ?? null;
    this.complete(a);
  }

  readFailed(h: Host, ctx: Uint8Array): void {
    const a = this.reads.get(dec.decode(ctx));
    if (a === undefined || a.client.busy !== a || a.readNode !== h.id) return;
    this.reads.delete(a.ctx as string);
    a.client.guess = this.rng.pick(this.world.ids);
    this.world.schedule(this.world.now + this.rng.range(0.2, 1.5), () => this.attempt(a));
  }

  // ---- One operation -----------------------------------------------------------------------------

  private issue(c: Client): void {
    if (this.stopped || c.busy) return;
    c.seq++;
    const key = `k${this.rng.int(this.profile.keys)}`;
    const value = `${c.id}.${c.seq}`;
    // A get with probability getShare; otherwise a write: put, delete and cas as 6:2:3.
    const g = this.profile.getShare;
    const r = this.rng.float();
    const w = ((r - g) / (1 - g)) * 11;
    const now = this.world.now;
    let op: Operation;
    let mode: Mode = 'log';
    if (r < g) {
      op = { clientId: c.id, op: 'get', key, call: now };
      const lease = this.profile.raft.leaseReads && this.rng.chance(this.profile.leaseReadP);
      mode = this.rng.chance(0.2) ? 'log' : lease ? 'lease' : 'index';
    } else if (w < 6) {
      op = { clientId: c.id, op: 'put', key, value, call: now };
    } else if (w < 8) {
      op = { clientId: c.id, op: 'delete', key, call: now };
    } else {
      const guess = c.seen.get(key);
      const expected = this.rng.chance(0.7) && guess !== undefined ? guess : this.rng.chance(0.5) ? null : `${c.id}.${this.rng.int(c.seq) + 1}`;
      op = { clientId: c.id, op: 'cas', key, value, expected, call: now };
    }
    const a: Attempt = { client: c, op, seq: c.seq, mode, deadline: now + this.profile.opTimeout, tries: 0 };
    c.busy = a;
    this.world.mark(30, c.id, c.seq);
    this.world.log(() => `c${c.id} #${c.seq} ${describe(op)} via ${mode}`);
    this.world.schedule(a.deadline, () => {
      if (c.busy === a) this.giveUp(a, 'timed out');
    });
    this.attempt(a);
  }

  private attempt(a: Attempt): void {
    const c = a.client;
    if (c.busy !== a) return;
    a.tries++;
    const isRead = a.op.op === 'get' && a.mode !== 'log';
    const target = isRead && a.mode === 'index' && this.rng.chance(this.profile.followerReadP) ? this.rng.pick(this.world.ids) : c.guess;
    const h = this.world.host(target);
    if (h === undefined || h.node === null) {
      c.guess = this.rng.pick(this.world.ids);
      this.world.schedule(this.world.now + this.rng.range(0.2, 1.5), () => this.attempt(a));
      return;
    }
    if (isRead) {
      const ctx = encodeReadCtx(c.id, a.seq, a.tries);
      a.ctx = dec.decode(ctx);
      a.readNode = target;
      this.reads.set(a.ctx, a);
      h.node.readIndex(ctx, { lease: a.mode === 'lease' });
      this.world.touch(h);
      return;
    }
    const o = a.op;
    const cmd = { c: c.id, s: a.seq, op: o.op as OpName, k: o.key, ...(o.value !== undefined ? { v: o.value } : {}), ...(o.op === 'cas' ? { e: o.expected ?? null } : {}) };
    const res = h.node.propose(encodeCommand(cmd));
    this.world.touch(h);
    if (res.ok) {
      a.at = { node: target, index: res.index, term: res.term };
      let m = this.proposals.get(target);
      if (m === undefined) this.proposals.set(target, (m = new Map()));
      m.set(res.index, a);
      this.world.log(() => `c${c.id} #${a.seq} proposed at n${target} as ${res.index}/t${res.term}`);
      return;
    }
    c.guess = res.leader !== 0 && res.leader !== target ? res.leader : this.rng.pick(this.world.ids);
    this.world.schedule(this.world.now + this.rng.range(0.2, 1.5), () => this.attempt(a));
  }

  private complete(a: Attempt): void {
    const o = a.op;
    this.history.push(o);
    this.done[a.mode]++;
    if (o.op === 'put' || (o.op === 'cas' && o.output === true)) a.client.seen.set(o.key, o.value ?? null);
    else if (o.op === 'delete') a.client.seen.set(o.key, null);
    else if (o.op === 'get') a.client.seen.set(o.key, (o.output as string | null | undefined) ?? null);
    this.world.log(() => `c${a.client.id} #${a.seq} done: ${describe(o)} -> ${JSON.stringify(o.output ?? null)}`);
    this.finish(a);
  }

  private giveUp(a: Attempt, why: string): void {
    // A write that some node accepted may still commit: it stays, as pending.
    const pending = a.at !== undefined && a.op.op !== 'get';
    if (pending) {
      a.op.ret = Infinity;
      a.op.note = `proposed at n${a.at?.node} as ${a.at?.index}/t${a.at?.term}; ${why}`;
      this.history.push(a.op);
      this.done.pending++;
    }
    this.world.log(() => `c${a.client.id} #${a.seq} gives up (${why})${pending ? ': pending' : ''}`);
    a.client.guess = this.rng.pick(this.world.ids);
    this.finish(a);
  }

  private finish(a: Attempt): void {
    const c = a.client;
    if (a.ctx !== undefined) this.reads.delete(a.ctx);
    c.busy = undefined;
    if (!this.stopped) this.world.schedule(this.world.now + this.rng.range(0, 2), () => this.issue(c));
  }
}

function describe(o: Operation): string {
  if (o.op === 'put') return `put ${o.key}=${o.value}`;
  if (o.op === 'cas') return `cas ${o.key} ${o.expected ?? 'nil'}→${o.value}`;
  return `${o.op} ${o.key}`;
}
