// Prometheus metrics: a tiny registry (counters, gauges, fixed-bucket histograms) rendered in the
// text exposition format, and the set of metrics a replica exports. The hot path (a request
// finishing) is one Map lookup and a few additions; everything read from other modules (Raft state,
// router and replica counters) is sampled only when /metrics is scraped.
import { statSync } from 'node:fs';
import type { Replica } from '../replica/replica.ts';
import type { Router } from '../router/router.ts';
import type { Store } from '../storage/index.ts';
import type { Peers } from '../transport/peers.ts';
import { LoopLag } from './loop-lag.ts';
import { RuntimeMetrics } from './runtime-metrics.ts';

export type LabelValues = readonly string[];

/** Latency buckets (seconds): 250 µs to 10 s, dense where a Raft round trip with fsync lands. */
export const LATENCY_BUCKETS = [0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Entries per persisted batch (group commit). */
export const BATCH_BUCKETS = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096];

interface Metric {
  render(out: string[]): void;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labelText(names: readonly string[], values: LabelValues, extra = ''): string {
  const parts = names.map((n, i) => `${n}="${escapeLabel(values[i] ?? '')}"`);
  if (extra) parts.push(extra);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

function num(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function header(out: string[], name: string, help: string, type: string): void {
  out.push(`# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`);
  out.push(`# TYPE ${name} ${type}`);
}

/** A monotonically increasing count, per label combination. */
export class Counter implements Metric {
  private readonly series = new Map<string, { values: LabelValues; n: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[] = [],
  ) {}

  inc(values: LabelValues = [], by = 1): void {
    const key = values.join('\u0000');
    const s = this.series.get(key);
    if (s) s.n += by;
    else this.series.set(key, { values: [...values], n: by });
  }

  get(values: LabelValues = []): number {
    return this.series.get(values.join('\u0000'))?.n ?? 0;
  }

  render(out: string[]): void {
    header(out, this.name, this.help, 'counter');
    for (const s of this.series.values()) out.push(`${this.name}${labelText(this.labelNames, s.values)} ${num(s.n)}`);
  }
}

/** Sampled at scrape time: counters and gauges owned by other modules. */
export class Sampled implements Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge',
    readonly labelNames: readonly string[],
    private readonly sample: () => [LabelValues, number][],
  ) {}

  render(out: string[]): void {
    header(out, this.name, this.help, this.type);
    for (const [values, v] of this.sample()) out.push(`${this.name}${labelText(this.labelNames, values)} ${num(v)}`);
  }
}

interface HistogramSeries {
  values: LabelValues;
  counts: number[];
  sum: number;
  count: number;
}

/** Fixed buckets; observe() is a short linear scan (≤ 16 buckets beats a binary search here). */
export class Histogram implements Metric {
  private readonly series = new Map<string, HistogramSeries>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[],
    readonly labelNames: readonly string[] = [],
  ) {
    for (let i = 1; i < buckets.length; i++) if (!(buckets[i]! > buckets[i - 1]!)) throw new RangeError(`${name}: buckets must increase`);
  }

  observe(v: number, values: LabelValues = []): void {
    const key = values.join('\u0000');
    let s = this.series.get(key);
    if (!s) {
      s = { values: [...values], counts: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    const b = this.buckets;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    if (i < b.length) s.counts[i]!++;
    s.sum += v;
    s.count++;
  }

  /** Observations so far for one label combination (tests, INFO). */
  countOf(values: LabelValues = []): number {
    return this.series.get(values.join('\u0000'))?.count ?? 0;
  }

  render(out: string[]): void {
    header(out, this.name, this.help, 'histogram');
    for (const s of this.series.values()) {
      let cumulative = 0;
      this.buckets.forEach((le, i) => {
        cumulative += s.counts[i]!;
        out.push(`${this.name}_bucket${labelText(this.labelNames, s.values, `le="${num(le)}"`)} ${cumulative}`);
      });
      out.push(`${this.name}_bucket${labelText(this.labelNames, s.values, 'le="+Inf"')} ${s.count}`);
      out.push(`${this.name}_sum${labelText(this.labelNames, s.values)} ${num(s.sum)}`);
      out.push(`${this.name}_count${labelText(this.labelNames, s.values)} ${s.count}`);
    }
  }
}

export class Registry {
  private readonly metrics: Metric[] = [];

  add<M extends Metric>(m: M): M {
    this.metrics.push(m);
    return m;
  }

  /** The text exposition format (version 0.0.4). */
  render(): string {
    const out: string[] = [];
    for (const m of this.metrics) m.render(out);
    return `${out.join('\n')}\n`;
  }
}

/** What the replica's metrics read at scrape time; plain callbacks so this file imports no module. */
export interface MetricSources {
  raft(): {
    role: string;
    term: number;
    leader: number;
    /** An idle group's slow heartbeat rhythm (docs/raft.md, quiet groups). */
    quiet: boolean;
    /** Replaced and not caught up since (docs/raft.md, a voter started from an empty data directory). */
    blank: boolean;
    commit: number;
    applied: number;
    firstIndex: number;
    lastIndex: number;
    progress: { id: number; match: number; next: number }[];
  };
  replicaStats(): { leaderChanges: number; readies: number; applied: number; persisted: number; readsJoined: number };
  routerStats(): { forwarded: number; proposed: number; reads: number; staleReads: number };
  peers(): { id: number; connected: boolean; framesSent: number; dropped: number }[];
  /** Keys in this replica's state machine. */
  keys(): number;
  /** Bytes of the data file on disk (log, state machine and metadata in one LMDB file). */
  storageBytes(): number;
  /** Whether this group holds partitions in a hand-off (frozen, arriving or dropping): absent on a plain group. */
  handoffPending?(): boolean;
  /** Hand-off entries that found a partition arriving here in a later stay than theirs (StateMachine.stats). */
  handoffStale?(): number;
  /** A shard replica's requests for keys of other groups: over TCP, or to their leader in this process. */
  shardRoutes?(): ShardRouteCounts;
}

/** How requests for keys of other shard groups went (ShardRoutes.stats). */
export interface ShardRouteCounts {
  remote: number;
  hosted: number;
  hostedReads: number;
}

const ROLES = ['follower', 'pre-candidate', 'candidate', 'leader'];

/** Every metric a replica exports, and the hooks the doors and the storage shell call. */
export class ServerMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter;
  private readonly latency: Histogram;
  private readonly fsyncLatency: Histogram;
  private readonly fsyncBatch: Histogram;
  private readonly connections = new Map<string, number>();
  private readonly runtime: RuntimeMetrics;

  /** Event-loop lag: the server feeds it from the Raft tick (loop-lag.ts). */
  constructor(
    src: MetricSources,
    readonly loopLag: LoopLag = new LoopLag(),
  ) {
    const r = this.registry;
    this.requests = r.add(new Counter('kvs_requests_total', 'Client requests answered, by door, operation and outcome (ok or an error code).', ['door', 'op', 'outcome']));
    this.latency = r.add(new Histogram('kvs_request_duration_seconds', 'Time from a request being decoded to its answer being ready, by door and operation.', LATENCY_BUCKETS, ['door', 'op']));
    r.add(new Sampled('kvs_door_connections', 'Open client connections, by door.', 'gauge', ['door'], () => [...this.connections].map(([d, n]): [LabelValues, number] => [[d], n])));

    const gauge = (name: string, help: string, f: () => number): void => void r.add(new Sampled(name, help, 'gauge', [], () => [[[], f()]]));
    const counter = (name: string, help: string, f: () => number): void => void r.add(new Sampled(name, help, 'counter', [], () => [[[], f()]]));
    gauge('kvs_raft_term', 'Current Raft term.', () => src.raft().term);
    const pending = src.handoffPending;
    if (pending) gauge('kvs_handoff_pending', 'Whether this replica\'s group holds partitions in a hand-off (1) or none (0); alerts watch how long it stays 1.', () => (pending() ? 1 : 0));
    const stale = src.handoffStale;
    if (stale) counter('kvs_handoff_stale_entries_total', 'Hand-off entries (imports, purges, activations) applied as no-ops here: proposed for an earlier stay of a partition arriving here again.', () => stale());
    r.add(new Sampled('kvs_raft_role', 'Raft role of this replica (1 for the current role).', 'gauge', ['role'], () => {
      const role = src.raft().role;
      return ROLES.map((x): [LabelValues, number] => [[x], x === role ? 1 : 0]);
    }));
    gauge('kvs_raft_leader_id', 'Replica id of the leader this replica follows (0: none known).', () => src.raft().leader);
    gauge('kvs_raft_quiet', 'Whether the group is quiet here (1): an idle group whose leader heartbeats once per election timeout.', () => (src.raft().quiet ? 1 : 0));
    gauge('kvs_raft_blank', 'Whether this replica is blank (1): its data directory was replaced and it has not caught up with a leader since.', () => (src.raft().blank ? 1 : 0));
    counter('kvs_raft_leader_changes_total', 'Times the known leader changed (elections seen by this replica).', () => src.replicaStats().leaderChanges);
    gauge('kvs_raft_commit_index', 'Highest log index known committed.', () => src.raft().commit);
    gauge('kvs_raft_applied_index', 'Highest log index applied to the state machine.', () => src.raft().applied);
    gauge('kvs_raft_log_first_index', 'First index still in the log (after compaction).', () => src.raft().firstIndex);
    gauge('kvs_raft_log_last_index', 'Last index in the log.', () => src.raft().lastIndex);
    gauge('kvs_raft_log_entries', 'Entries held in the log (last - first + 1).', () => {
      const s = src.raft();
      return Math.max(0, s.lastIndex - s.firstIndex + 1);
    });
    r.add(new Sampled('kvs_raft_follower_match_index', 'On the leader: highest index known replicated on each replica.', 'gauge', ['replica'], () =>
      src.raft().progress.map((p): [LabelValues, number] => [[String(p.id)], p.match]),
    ));
    counter('kvs_raft_ready_total', 'Ready batches handled (persist, send, apply).', () => src.replicaStats().readies);
    counter('kvs_raft_entries_persisted_total', 'Log entries written to disk.', () => src.replicaStats().persisted);
    counter('kvs_raft_entries_applied_total', 'Log entries applied to the state machine.', () => src.replicaStats().applied);
    this.fsyncLatency = r.add(new Histogram('kvs_fsync_duration_seconds', 'Time to persist one Ready (one LMDB transaction and fsync).', LATENCY_BUCKETS));
    this.fsyncBatch = r.add(new Histogram('kvs_fsync_batch_entries', 'Log entries persisted per fsync (group commit batch size).', BATCH_BUCKETS));
    counter('kvs_router_forwarded_total', 'Writes relayed to the leader by this replica.', () => src.routerStats().forwarded);
    counter('kvs_router_proposed_total', 'Writes proposed by this replica as leader.', () => src.routerStats().proposed);
    counter('kvs_router_linearizable_reads_total', 'Reads served after a ReadIndex barrier.', () => src.routerStats().reads);
    counter('kvs_replica_reads_joined_total', 'Linearizable reads on a follower that shared a ReadIndex request already queued.', () => src.replicaStats().readsJoined);
    counter('kvs_router_stale_reads_total', 'Reads served from local state without a barrier.', () => src.routerStats().staleReads);
    const routes = src.shardRoutes;
    if (routes) {
      r.add(new Sampled('kvs_shard_routed_total', "Requests for keys of other shard groups, by how they went: to a replica over TCP (remote), to the group's leader in this process (hosted), or as a linearizable read to its follower in this process (hosted-read; those it could not serve go on over TCP and count as remote too). Remote also counts reads of this group's keys sent to its other replicas while this one, cut off from its leader, answers NOT_LEADER.", 'counter', ['to'], () => {
        const s = routes();
        return [[['remote'], s.remote], [['hosted'], s.hosted], [['hosted-read'], s.hostedReads]];
      }));
    }
    r.add(new Sampled('kvs_peer_connected', 'Whether the link to a peer replica is up.', 'gauge', ['peer'], () => src.peers().map((p): [LabelValues, number] => [[String(p.id)], p.connected ? 1 : 0])));
    r.add(new Sampled('kvs_peer_frames_sent_total', 'Frames sent to a peer replica.', 'counter', ['peer'], () => src.peers().map((p): [LabelValues, number] => [[String(p.id)], p.framesSent])));
    r.add(new Sampled('kvs_peer_frames_dropped_total', 'Frames dropped for a peer replica (link down or queue full).', 'counter', ['peer'], () => src.peers().map((p): [LabelValues, number] => [[String(p.id)], p.dropped])));
    gauge('kvs_keys', 'Keys in this replica\'s state machine.', () => src.keys());
    gauge('kvs_storage_file_bytes', 'Size of the LMDB data file.', () => src.storageBytes());
    this.runtime = new RuntimeMetrics(r, loopLag);
  }

  /** One request answered by a door. `outcome` is 'ok' or an error code. */
  observeRequest(door: string, op: string, seconds: number, outcome: string): void {
    this.requests.inc([door, op, outcome]);
    this.latency.observe(seconds, [door, op]);
  }

  requestCount(door: string, op: string, outcome = 'ok'): number {
    return this.requests.get([door, op, outcome]);
  }

  /** One persisted Ready. */
  observeFsync(seconds: number, entries: number): void {
    this.fsyncLatency.observe(seconds);
    this.fsyncBatch.observe(entries);
  }

  connectionOpened(door: string): void {
    this.connections.set(door, (this.connections.get(door) ?? 0) + 1);
  }

  connectionClosed(door: string): void {
    this.connections.set(door, Math.max(0, (this.connections.get(door) ?? 0) - 1));
  }

  render(): string {
    const text = this.registry.render();
    this.runtime.afterScrape();
    return text;
  }

  /** Stops the GC observer and the event-loop monitor. */
  close(): void {
    this.runtime.stop();
  }
}

/** Reads a replica's parts for ServerMetrics (types only: nothing is imported at run time). */
export function replicaMetricSources(p: { replica: Replica; router: Router; peers: Peers; store: Store; handoffPending?: () => boolean; handoffStale?: () => number; shardRoutes?: () => ShardRouteCounts }): MetricSources {
  return {
    ...(p.handoffPending ? { handoffPending: p.handoffPending } : {}),
    ...(p.handoffStale ? { handoffStale: p.handoffStale } : {}),
    ...(p.shardRoutes ? { shardRoutes: p.shardRoutes } : {}),
    raft: () => p.replica.node.status,
    replicaStats: () => p.replica.stats,
    routerStats: () => p.router.stats,
    peers: () => p.peers.stats(),
    keys: () => {
      try {
        return p.store.count();
      } catch {
        return 0; // a failed store reports nothing rather than failing the scrape
      }
    },
    storageBytes: () => {
      try {
        return statSync(p.store.dataFile).size;
      } catch {
        return 0;
      }
    },
  };
}
