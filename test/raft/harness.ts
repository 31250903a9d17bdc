// A tiny synchronous cluster for unit tests: in-memory disks, a network the test controls
// message by message, and a map state machine. (The randomized simulator lives in test/sim/.)
import { RaftNode, defaultRaftConfig } from '../../src/raft/node.ts';
import type { ConfState, Entry, HardState, Message, NodeId, Ready, SnapshotMeta, SnapshotSource } from '../../src/raft/types.ts';

export interface Disk {
  hard: HardState;
  base: SnapshotMeta;
  entries: Entry[];
  applied: number;
  state: Map<string, string>;
  staged: Uint8Array[];
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export function put(key: string, value: string): Uint8Array {
  return enc.encode(`${key}=${value}`);
}

/** A SnapshotSource over a map: images are JSON, read in byte ranges (cursor = offset). */
class MapSnapshots implements SnapshotSource {
  private images = new Map<number, Uint8Array>();
  constructor(private readonly disk: Disk) {}
  capture(): number {
    const idx = this.disk.applied;
    this.images.set(idx, enc.encode(JSON.stringify([...this.disk.state])));
    return idx;
  }
  read(index: number, cursor: Uint8Array | null, maxBytes: number) {
    const img = this.images.get(index)!;
    const from = cursor ? new DataView(cursor.buffer, cursor.byteOffset).getUint32(0) : 0;
    const to = Math.min(img.length, from + maxBytes);
    const next = to >= img.length ? null : new Uint8Array(new Uint32Array([0]).buffer);
    if (next) new DataView(next.buffer).setUint32(0, to);
    return { data: img.subarray(from, to), next };
  }
  release(index: number): void {
    this.images.delete(index);
  }
}

export interface NodeOpts {
  leaseReads?: boolean;
  chunkBytes?: number;
  quietAfterTicks?: number;
  /** Started from an empty data directory with the group's configuration (RaftConfig.blankStart). */
  blankStart?: boolean;
}

export class Cluster {
  nodes = new Map<NodeId, RaftNode>();
  disks = new Map<NodeId, Disk>();
  /** Messages sent but not delivered yet. */
  inbox: Message[] = [];
  /** Returns false to drop a message. */
  filter: (m: Message) => boolean = () => true;
  applied = new Map<NodeId, Entry[]>();
  reads = new Map<NodeId, { ctx: string; index: number }[]>();
  sent: Message[] = [];
  private rngState: number;

  constructor(ids: NodeId[], opts: NodeOpts & { seed?: number } = {}) {
    this.rngState = opts.seed ?? 1;
    const conf: ConfState = { voters: ids, learners: [] };
    for (const id of ids) this.addNode(id, conf, opts);
  }

  addNode(id: NodeId, conf: ConfState, opts: NodeOpts = {}): void {
    const disk: Disk = {
      hard: { term: 0, vote: 0, commit: 0 },
      base: { index: 0, term: 0, conf },
      entries: [],
      applied: 0,
      state: new Map(),
      staged: [],
    };
    this.disks.set(id, disk);
    this.applied.set(id, []);
    this.reads.set(id, []);
    this.start(id, opts);
  }

  /** (Re)starts a node from its disk, as after a crash. */
  start(id: NodeId, opts: NodeOpts = {}): RaftNode {
    const disk = this.disks.get(id)!;
    const node = new RaftNode(
      {
        ...defaultRaftConfig,
        id,
        leaseReads: opts.leaseReads ?? false,
        snapshotChunkBytes: opts.chunkBytes ?? defaultRaftConfig.snapshotChunkBytes,
        quietAfterTicks: opts.quietAfterTicks ?? defaultRaftConfig.quietAfterTicks,
        ...(opts.blankStart ? { blankStart: true } : {}),
        random: () => this.random(),
        snapshots: new MapSnapshots(disk),
      },
      { hardState: { ...disk.hard }, base: disk.base, entries: [...disk.entries], applied: disk.applied },
    );
    this.nodes.set(id, node);
    return node;
  }

  node(id: NodeId): RaftNode {
    return this.nodes.get(id)!;
  }

  private random(): number {
    // mulberry32: deterministic per test
    let t = (this.rngState += 0x6d2b79f5);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Plays the I/O shell for every node with a Ready: persist, send, apply, advance. */
  processReadies(): boolean {
    let any = false;
    for (const [id, node] of this.nodes) {
      while (node.hasReady()) {
        any = true;
        const rd = node.ready();
        this.persist(id, rd);
        for (const m of rd.messages) {
          this.sent.push(m);
          if (this.filter(m)) this.inbox.push(m);
        }
        this.apply(id, rd);
        node.advance(rd);
      }
    }
    return any;
  }

  private persist(id: NodeId, rd: Ready): void {
    const disk = this.disks.get(id)!;
    for (const c of rd.snapshotChunks) {
      if (c.seq === 0) disk.staged = [];
      disk.staged.push(c.data);
    }
    if (rd.snapshot) {
      const bytes = Buffer.concat(disk.staged);
      disk.state = new Map(JSON.parse(dec.decode(bytes)) as [string, string][]);
      disk.base = rd.snapshot;
      disk.entries = [];
      disk.applied = rd.snapshot.index;
      disk.staged = [];
    }
    if (rd.compaction) {
      disk.entries = disk.entries.filter((e) => e.index > rd.compaction!.index);
      disk.base = rd.compaction;
    }
    if (rd.entries.length > 0) {
      const first = rd.entries[0]!.index;
      disk.entries = disk.entries.filter((e) => e.index < first).concat(rd.entries);
    }
    if (rd.hardState) disk.hard = { ...rd.hardState };
  }

  private apply(id: NodeId, rd: Ready): void {
    const disk = this.disks.get(id)!;
    for (const e of rd.committedEntries) {
      this.applied.get(id)!.push(e);
      if (e.type === 0 && e.data.length > 0) {
        const [k, v] = dec.decode(e.data).split('=') as [string, string];
        disk.state.set(k, v);
      }
      disk.applied = e.index;
    }
    for (const r of rd.readStates) this.reads.get(id)!.push({ ctx: dec.decode(r.ctx), index: r.index });
  }

  /** Delivers messages (and processes Readies) until nothing moves, or `max` deliveries. */
  settle(max = 100_000): void {
    for (let n = 0; n < max; n++) {
      this.processReadies();
      const m = this.inbox.shift();
      if (!m) return;
      this.nodes.get(m.to)?.step(m);
    }
    throw new Error('cluster did not settle');
  }

  tickAll(n = 1): void {
    for (let i = 0; i < n; i++) {
      for (const node of this.nodes.values()) node.tick();
      this.settle();
    }
  }

  leaders(): RaftNode[] {
    return [...this.nodes.values()].filter((n) => n.status.role === 'leader');
  }

  /** Ticks until exactly one leader exists (deterministic for a given seed). */
  electLeader(maxTicks = 200): RaftNode {
    for (let i = 0; i < maxTicks; i++) {
      this.tickAll();
      const ls = this.leaders();
      if (ls.length === 1 && ls[0]!.status.commit >= ls[0]!.status.lastIndex) return ls[0]!;
    }
    throw new Error('no leader elected');
  }

  /** Campaigns node `id` directly (as if its election timer fired). */
  campaign(id: NodeId): void {
    const node = this.node(id);
    for (let i = 0; i < 40 && node.status.role === 'follower'; i++) node.tick();
    this.settle();
  }

  isolate(id: NodeId): void {
    this.filter = (m) => m.from !== id && m.to !== id;
  }

  heal(): void {
    this.filter = () => true;
  }

  state(id: NodeId): Map<string, string> {
    return this.disks.get(id)!.state;
  }
}

export function text(b: Uint8Array): string {
  return dec.decode(b);
}
