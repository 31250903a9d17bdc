// The I/O shell around one RaftNode, as the Ready contract (src/raft/types.ts) asks: stage and
// install snapshots, compact, persist entries with the hard state, only then send, apply, serve
// reads, advance. Persisting may take simulated time, during which the node keeps running; a crash
// may land in the middle of any of these steps and keeps only what was already written.
import { RaftNode } from '../../src/raft/node.ts';
import { Role, type Entry, type Message, type NodeId, type RaftConfig, type Ready, type SnapshotSource } from '../../src/raft/types.ts';
import type { Disk } from './disk.ts';
import { Violation, type Checker, type Watched } from './invariants.ts';
import { Kv, type ApplyOutcome } from './kv.ts';
import type { Rng } from './prng.ts';
import type { Profile } from './profile.ts';

/** What a host needs from the world around it. */
export interface Shell {
  readonly now: number;
  readonly checker: Checker;
  readonly profile: Profile;
  schedule(at: number, run: () => void): void;
  /** The node changed: take its next Ready and check it at the end of this event. */
  touch(h: Host): void;
  send(from: Host, m: Message): void;
  applied(h: Host, e: Entry, outcome: ApplyOutcome): void;
  /** A read of this node may be served now (the node has applied far enough). */
  readReady(h: Host, ctx: Uint8Array): void;
  readFailed(h: Host, ctx: Uint8Array): void;
  installed(h: Host, index: number): void;
  /** The host crashed on its own (an armed mid-Ready crash). */
  crashed(h: Host, where: string): void;
  readyDone(h: Host, rd: Ready): void;
}

/** Where an armed crash strikes while a Ready is being handled. */
const crashPoints = ['before-persist', 'after-snapshot', 'after-persist', 'mid-apply'] as const;

export class Host implements Watched {
  node: RaftNode | null = null;
  /** Set by the nemesis: the next Ready handled crashes part-way. */
  armed = false;
  private busy = false;
  private epoch = 0;
  private waiting: { ctx: Uint8Array; index: number }[] = [];
  private images = new Map<number, { bytes: Uint8Array; refs: number }>();

  constructor(
    readonly id: NodeId,
    readonly disk: Disk,
    private readonly shell: Shell,
    private readonly rng: Rng,
    private readonly raft: Omit<RaftConfig, 'id' | 'random' | 'snapshots'>,
  ) {}

  get up(): boolean {
    return this.node !== null;
  }

  start(): void {
    const cfg: RaftConfig = { ...this.raft, id: this.id, random: () => this.rng.float(), snapshots: this.source() };
    this.node = new RaftNode(cfg, this.disk.persisted());
    this.shell.checker.started(this);
  }

  /** Loses everything not on disk. */
  crash(): void {
    this.node = null;
    this.busy = false;
    this.armed = false;
    this.epoch++;
    this.waiting = [];
    this.images.clear();
  }

  /** Takes and handles Readys until there are none, or one is waiting for its write to finish. */
  pump(): void {
    while (this.node !== null && !this.busy && this.node.hasReady()) {
      const rd = this.node.ready();
      this.shell.checker.readyTaken(this, rd);
      this.busy = true;
      const early = this.sendsEarly(rd);
      if (early) for (const m of rd.messages) this.send(m);
      const fsync = this.shell.profile.fsyncMax;
      if (fsync === 0) {
        this.handle(rd, early);
        continue;
      }
      const epoch = this.epoch;
      this.shell.schedule(this.shell.now + this.rng.range(0, fsync), () => {
        if (epoch !== this.epoch) return; // crashed meanwhile: the write never happened
        this.handle(rd, early);
        this.shell.touch(this); // the world takes the next Ready and checks the node
      });
      return;
    }
  }

  /** Steps 1-6 of the Ready contract; `sent`: the messages already went out (sendsEarly). */
  private handle(rd: Ready, sent: boolean): void {
    const node = this.node as RaftNode;
    const crashAt = this.armed ? this.rng.pick(crashPoints) : undefined;
    const crash = (where: string): void => {
      this.crash();
      this.shell.crashed(this, where);
    };
    if (crashAt === 'before-persist') return crash(crashAt);

    // 1-2. Snapshot chunks and install; compaction.
    this.stage(rd);
    if (crashAt === 'after-snapshot') return crash(crashAt);

    // 3. Entries and hard state, one durable write.
    const first = rd.entries[0];
    if (first !== undefined && (first.index <= this.disk.base.index || first.index > this.disk.lastIndex() + 1)) {
      throw new Violation('ready-contract', `n${this.id}: Ready appends at ${first.index}, log is (${this.disk.base.index}, ${this.disk.lastIndex()}]`);
    }
    this.disk.append(rd.entries);
    if (rd.hardState) {
      const before = this.disk.hard;
      this.disk.hard = { ...rd.hardState };
      this.shell.checker.persisted(this, before, this.disk.hard);
    }

    // 4. Only now send. A crash here may have let any subset out.
    for (const m of sent ? [] : rd.messages) {
      if (crashAt === 'after-persist' && this.rng.chance(0.5)) continue;
      this.send(m);
    }
    if (crashAt === 'after-persist') return crash(crashAt);

    // 5. Apply, then serve reads.
    const applyUpTo = crashAt === 'mid-apply' ? this.rng.int(rd.committedEntries.length + 1) : rd.committedEntries.length;
    for (const e of rd.committedEntries.slice(0, applyUpTo)) {
      const kv = this.disk.kv;
      this.shell.checker.applying(this, e, kv);
      const outcome = kv.apply(e);
      this.shell.checker.appliedState(this, kv);
      if (outcome.kind === 'op' && outcome.duplicate) {
        throw new Violation('duplicate-apply', `n${this.id} applies client ${outcome.clientId} seq ${outcome.seq} a second time at ${e.index}`);
      }
      this.shell.applied(this, e, outcome);
    }
    if (crashAt === 'mid-apply') return crash(crashAt);
    for (const ctx of rd.failedReads) this.shell.readFailed(this, ctx);
    for (const r of rd.readStates) this.waiting.push(r);
    this.serveReads();

    // 6.
    node.advance(rd);
    this.busy = false;
    this.shell.readyDone(this, rd);
  }

  private send(m: Message): void {
    this.shell.checker.sending(this, m);
    this.shell.send(this, m);
  }

  /**
   * A leader may replicate while its own write is in flight (DESIGN.md §4; etcd does): its appends
   * claim nothing about its own disk. Only when the Ready changes no term or vote, which must be
   * durable before anyone hears of them. The core must then not count its own unpersisted entries.
   */
  private sendsEarly(rd: Ready): boolean {
    if (!this.shell.profile.leaderSendsEarly || this.node?.status.role !== Role.Leader) return false;
    const h = rd.hardState;
    return h === undefined || (h.term === this.disk.hard.term && h.vote === this.disk.hard.vote);
  }

  private stage(rd: Ready): void {
    const d = this.disk;
    for (const c of rd.snapshotChunks) {
      if (c.seq === 0) d.staged = { meta: c.meta, parts: [] };
      const st = d.staged;
      if (st === undefined || st.parts.length !== c.seq || st.meta.index !== c.meta.index || st.meta.term !== c.meta.term) {
        throw new Violation('ready-contract', `n${this.id}: snapshot chunk ${c.seq} of ${c.meta.index}/t${c.meta.term} does not follow the staged ones`);
      }
      st.parts.push(c.data);
    }
    if (rd.snapshot) {
      const st = d.staged;
      if (st === undefined || st.meta.index !== rd.snapshot.index || st.meta.term !== rd.snapshot.term) {
        throw new Violation('ready-contract', `n${this.id}: snapshot ${rd.snapshot.index} installed without its staged image`);
      }
      const image = Kv.fromImage(Buffer.concat(st.parts));
      this.shell.checker.installing(this, rd.snapshot, image, d.kv.applied);
      d.kv = image;
      d.base = rd.snapshot;
      d.entries = [];
      d.staged = undefined;
      this.shell.installed(this, rd.snapshot.index);
    }
    if (rd.compaction) {
      const c = rd.compaction;
      if (c.index > d.kv.applied || (d.termAt(c.index) !== undefined && d.termAt(c.index) !== c.term)) {
        throw new Violation('ready-contract', `n${this.id}: compaction to ${c.index}/t${c.term} (applied ${d.kv.applied}, term there ${d.termAt(c.index)})`);
      }
      if (c.index > d.base.index) d.compact(c);
    }
  }

  private serveReads(): void {
    const applied = this.disk.kv.applied;
    const ready = this.waiting.filter((r) => r.index <= applied);
    if (ready.length === 0) return;
    this.waiting = this.waiting.filter((r) => r.index > applied);
    for (const r of ready) this.shell.readReady(this, r.ctx);
  }

  /** Snapshot images of the state machine, pinned at the applied index, read by byte offset. */
  private source(): SnapshotSource {
    return {
      capture: () => {
        const index = this.disk.kv.applied;
        const img = this.images.get(index) ?? { bytes: this.disk.kv.image(), refs: 0 };
        img.refs++;
        this.images.set(index, img);
        return index;
      },
      read: (index, cursor, maxBytes) => {
        const img = this.images.get(index);
        if (img === undefined) throw new Violation('ready-contract', `n${this.id}: the core reads snapshot image ${index}, which is not pinned`);
        const from = cursor === null ? 0 : new DataView(cursor.buffer, cursor.byteOffset).getUint32(0);
        const to = Math.min(img.bytes.length, from + Math.max(1, maxBytes));
        let next: Uint8Array | null = null;
        if (to < img.bytes.length) {
          next = new Uint8Array(4);
          new DataView(next.buffer).setUint32(0, to);
        }
        return { data: img.bytes.subarray(from, to), next };
      },
      release: (index) => {
        const img = this.images.get(index);
        if (img !== undefined && --img.refs <= 0) this.images.delete(index);
      },
    };
  }
}
