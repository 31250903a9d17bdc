// Runs on a shard group's leader and moves the group toward the cluster configuration, one step at a
// time, every step through the group's own Raft log so a new leader picks up where the old one was:
//   1. a newer configuration epoch → propose it (partitions become leaving / arriving / dropping);
//   2. dropping partitions → delete their keys, then mark them dropped;
//   3. arriving partitions, a wave at a time per source group → clear leftovers, ask the source to
//      freeze them, pull their data in chunks and commit each chunk here, activate them, and tell
//      the placement group the moves are complete (the source then drops its copy).
// Every step is idempotent, so after a crash or a leader change the whole step is simply redone.
import { randomInt } from 'node:crypto';
import { Connection } from '../cluster/connection.ts';
import { Responsiveness } from '../cluster/responsiveness.ts';
import { callGroup } from '../cluster/group-call.ts';
import { groupOf, completeMoves, type ClusterConfig } from '../placement/config.ts';
import type { Replica } from '../replica/replica.ts';
import { systemEnv } from '../replica/env.ts';
import { Pacer } from '../timers/every.ts';
import type { StateMachine } from '../replica/state-machine.ts';
import { HandOffTarget, encodeImport, encodeOwnership, encodePurge } from '../replica/commands.ts';
import type { ConfigWatcher } from '../cluster/config-watcher.ts';
import { decodeResponse, type Response } from '../wire/index.ts';
import { HandoffType, decodeExportChunk, encodeExport, encodeFreeze, removedTail, type CopyRound, type ExportMode } from '../wire/handoff-codec.ts';
import { PartState, partitionsIn } from '../replica/ownership.ts';
import { walkPartitionKeys, type KeyScanner } from './partition-scan.ts';
import type { Logger } from '../log/logger.ts';

export interface ReconcilerOptions {
  replica: Replica;
  sm: StateMachine;
  watcher: ConfigWatcher;
  store: KeyScanner;
  /** Partitions moved per wave: smaller waves pause each partition for less time. */
  waveSize?: number;
  log?: Logger;
}

/** Passes while there is work (or a step failed and is retried), and while there is none. */
const BUSY_MS = 100;
const IDLE_MS = 1000;
const CHUNK_BYTES = 256 << 10;
/** Live delta rounds at most before the freeze, stopping early once a round is this small. */
const LIVE_ROUNDS = 3;
const SMALL_ROUND = 200;

type ExportAnswer = { type: number; body: Uint8Array };
/**
 * Keys per purge entry. Entries go one after another: proposing 16 at once made every replica of a
 * source group apply 16,000 deletes in one turn, stalled event loops 200-400 ms and cost elections
 * (bench/reshard.ts, docs/resharding.md).
 */
const PURGE_BATCH = 1000;
const REQUEST_MS = 5000;
/** How long one hand-off request may take, retries included (then the step is retried from the start). */
const CALL_MS = 3 * REQUEST_MS;

export class Reconciler {
  /**
   * Passes on the process's shared timer of that period (the reconcilers of one process wake it
   * once): every BUSY_MS while there is work, every IDLE_MS at rest — a leader change or a missed
   * configuration is picked up within IDLE_MS.
   */
  private readonly passes = new Pacer(() => void this.step(), systemEnv.every);
  private unwatch: (() => void) | undefined;
  private running = false;
  private stopped = false;
  private readonly conns = new Map<string, Connection>();
  /** A source replica that left a request unanswered (cut off) is asked last for a while. */
  private readonly responsiveness = new Responsiveness(REQUEST_MS);
  /** The leader of each source group, learned from answers and NOT_LEADER hints. */
  private readonly sourceLeaders = new Map<number, string>();
  readonly stats = { waves: 0, partitionsIn: 0, keysIn: 0, dropped: 0, errors: 0 };
  lastError = '';

  constructor(private readonly o: ReconcilerOptions) {}

  start(): void {
    // A new configuration is the usual start of work: act on it at once, not at the next pass.
    this.unwatch = this.o.watcher.onChange(() => void this.step());
    this.passes.pace(BUSY_MS);
  }

  stop(): void {
    this.stopped = true;
    this.unwatch?.();
    this.passes.stop();
    for (const c of this.conns.values()) c.close();
  }

  /** One pass; overlapping ticks are skipped while a pass runs. */
  async step(): Promise<void> {
    if (this.running || this.stopped) return;
    if (!this.o.replica.isLeader) {
      // A follower with work pending checks often: it may become the leader that has to do it.
      this.passes.pace(this.workPending() ? BUSY_MS : IDLE_MS);
      return;
    }
    this.running = true;
    try {
      this.passes.pace((await this.reconcile()) ? BUSY_MS : IDLE_MS);
    } catch (e) {
      this.passes.pace(BUSY_MS);
      this.stats.errors++;
      const msg = (e as Error).message;
      if (msg !== this.lastError) this.o.log?.warn('hand-off step failed, will retry', { error: msg });
      this.lastError = msg;
    } finally {
      this.running = false;
    }
  }

  /** Whether the group has a step to take: a newer epoch to apply, or partitions arriving or dropping. */
  private workPending(): boolean {
    const { sm, watcher } = this.o;
    const config = watcher.current;
    const own = sm.ownership;
    if (!config || !own) return false;
    return config.epoch > sm.epoch || partitionsIn(own, PartState.Dropping).length > 0 || partitionsIn(own, PartState.Arriving).length > 0;
  }

  /** One step toward the configuration; false when there was nothing to do. */
  private async reconcile(): Promise<boolean> {
    const { sm, watcher } = this.o;
    const config = watcher.current;
    if (!config) return false;
    if (config.epoch > sm.epoch) {
      await this.propose(encodeOwnership({ type: 'epoch', group: sm.group, config }));
      return true;
    }
    // A new leader may not have applied all its predecessor did (it learns the commit point with its
    // first entry): it would redo a wave already activated. Hand-off work is decided on a barrier.
    const before = sm.ownership!;
    if (partitionsIn(before, PartState.Dropping).length > 0 || partitionsIn(before, PartState.Arriving).length > 0) await this.barrier();
    const own = sm.ownership!;
    const dropping = partitionsIn(own, PartState.Dropping);
    if (dropping.length > 0) {
      this.stats.dropped += await this.purge(dropping, HandOffTarget.Dropping);
      await this.propose(encodeOwnership({ type: 'dropped', partitions: dropping }));
      return true;
    }
    const arriving = partitionsIn(own, PartState.Arriving);
    if (arriving.length === 0) return this.completeServed(config);
    // A wave is of one stay: its entries name it, and change nothing once the partitions have
    // moved away and come back (this pass may be a deposed leader's, waiting on a chunk meanwhile).
    const source = own.peer[arriving[0]!]!;
    const arrivedAt = own.arrivedAt[arriving[0]!]!;
    const wave = arriving.filter((p) => own.peer[p] === source && own.arrivedAt[p] === arrivedAt).slice(0, this.o.waveSize ?? 64);
    await this.receive(config, source, wave, arrivedAt);
    return true;
  }

  private async receive(config: ClusterConfig, source: number, wave: number[], arrivedAt: number): Promise<void> {
    const started = Date.now();
    const phases: string[] = [];
    let mark = started;
    const phase = (name: string): void => {
      const now = Date.now();
      phases.push(`${name} ${now - mark}`);
      mark = now;
    };
    await this.purge(wave, arrivedAt); // leftovers of an earlier stay of these partitions here
    phase('purge');
    const epoch = this.o.sm.epoch;
    // Most of the data is copied while the source still serves the partitions; once they are
    // frozen only what changed since travels. Should either part fail (an older source, a new
    // source leader, too many changes), the wave falls back to a full copy while frozen.
    let keys = 0;
    let chunks = 0;
    // This attempt's own tracking at the source, its rounds numbered: a resent request replays
    // the round it asked for, and a deposed leader of this group cannot use up the new one's.
    const copyId = randomInt(1, 2 ** 48);
    let round = 0;
    const pull = async (mode: ExportMode): Promise<number> => {
      const copy: CopyRound | undefined = mode === 'frozen' ? undefined : { id: copyId, round: mode === 'delta' ? ++round : 0 };
      const n = await this.copy(config, source, wave, epoch, arrivedAt, mode, copy);
      keys += n.keys;
      chunks += n.chunks;
      return n.keys;
    };
    let precopied = false;
    try {
      await pull('precopy');
      // Delta rounds while still served: each sends what changed during the previous step, so
      // the round left for the frozen partitions covers a shorter and shorter time.
      for (let live = 0; live < LIVE_ROUNDS; live++) if ((await pull('delta')) <= SMALL_ROUND) break;
      precopied = true;
    } catch (e) {
      this.o.log?.info('pre-copy not possible, copying while frozen', { from: source, error: (e as Error).message });
    }
    phase(`precopy and live deltas (${chunks} chunks)`);
    await this.call(config, source, (id) => encodeFreeze(id, { epoch, partitions: wave }));
    phase('freeze');
    let copied = false;
    if (precopied) {
      try {
        await pull('delta');
        copied = true;
      } catch (e) {
        this.o.log?.info('delta refused, copying in full while frozen', { from: source, error: (e as Error).message });
      }
      phase('delta');
    }
    if (!copied) {
      await this.purge(wave, arrivedAt); // what a pre-copy brought (even one that failed midway) may be deleted since
      await pull('frozen');
      phase('copy');
    }
    await this.propose(encodeOwnership({ type: 'activate', partitions: wave, arrivedAt }));
    phase('activate');
    // Applied here by now. Left arriving, the partitions are in another stay than this pass's: the
    // source of the new one still holds their data, and completing the move would drop it there.
    const own = this.o.sm.ownership!;
    const stale = wave.filter((p) => own.state[p] !== PartState.Serving);
    if (stale.length > 0) throw new Error(`partitions ${stale.join(',')} no longer arriving since epoch ${arrivedAt}: wave abandoned`);
    await this.completeMoves(wave);
    phase('config');
    this.stats.waves++;
    this.stats.partitionsIn += wave.length;
    this.stats.keysIn += keys;
    this.o.log?.info('received partitions', { partitions: wave.length, keys, from: source, ms: Date.now() - started, phases });
  }

  /**
   * Moves to this group that it already serves (activated) but the configuration still lists:
   * the leader that activated them stopped before telling the placement group (a crash, a lost
   * leadership, a failed update). Until told, the source keeps them frozen and no reshard starts.
   */
  private async completeServed(config: ClusterConfig): Promise<boolean> {
    const { sm } = this.o;
    const own = sm.ownership!;
    if (config.epoch !== sm.epoch) return false;
    const served = config.moves.filter((m) => m.to === sm.group && own.state[m.partition] === PartState.Serving).map((m) => m.partition);
    if (served.length === 0) return false;
    await this.completeMoves(served);
    this.o.log?.info('completed moves activated earlier', { partitions: served.length });
    return true;
  }

  /**
   * Tells placement the moves of these partitions to this group are complete, those of them it
   * serves. Decided on the configuration read for the write: that read may come long after this
   * replica last applied its log (a leader deposed meanwhile), and a move it lists may be a later
   * one, the partition gone away and arriving again, its data still at that source, which the
   * write would make drop it. Unless the group has applied that very configuration (its log then
   * holds such a partition's move away), a barrier after the read first applies what the log holds.
   */
  private async completeMoves(partitions: readonly number[]): Promise<void> {
    const { sm, watcher } = this.o;
    const served = (): number[] => partitions.filter((p) => sm.ownership!.state[p] === PartState.Serving);
    await watcher.update(
      (c) => completeMovesTo(c, sm.group, served()),
      async (read) => {
        if (read.epoch !== sm.epoch) await this.barrier();
      },
    );
  }

  /**
   * Pulls the wave's chunks in one mode and commits each here, the next chunk fetched from the
   * source while this one commits. A delta's removed keys are purged through the log.
   */
  private async copy(config: ClusterConfig, source: number, wave: number[], epoch: number, arrivedAt: number, mode: ExportMode, copy: CopyRound | undefined): Promise<{ keys: number; chunks: number }> {
    const fetch = (cursor: Uint8Array | null): Promise<ExportAnswer> => {
      const f = this.call(config, source, (id) => encodeExport(id, { epoch, partitions: wave, cursor, maxBytes: CHUNK_BYTES, mode, ...(copy ? { copy } : {}) }));
      f.catch(() => undefined); // awaited below; a failure then ends this copy like any other
      return f;
    };
    let next: Promise<ExportAnswer> | undefined = fetch(null);
    let keys = 0;
    let chunks = 0;
    while (next) {
      const f = await next;
      const chunk = decodeExportChunk(f.body);
      next = chunk.next === null ? undefined : fetch(chunk.next);
      const removed = chunk.removed ?? [];
      // The import carries the chunk as the source sent it, minus the removed list (its tail).
      await this.propose(encodeImport(removed.length > 0 ? f.body.subarray(0, f.body.length - removedTail(removed)) : f.body, arrivedAt));
      await this.proposePurges(removed, arrivedAt);
      keys += chunk.items.length + removed.length;
      chunks++;
    }
    return { keys, chunks };
  }

  /**
   * Deletes every local key of these partitions, through the log. Returns how many. `target`: the
   * partitions' stay (arriving), or HandOffTarget.Dropping.
   */
  private async purge(partitions: number[], target: number): Promise<number> {
    // The walk reads what this replica's store shows: first every committed entry applied and
    // visible there (a new leader's predecessor's imports, this leader's own last ones), else a
    // key they bring is missed here, and comes back after activation though deleted at the source.
    await this.barrier();
    const keys: Uint8Array[] = [];
    await walkPartitionKeys(this.o.store, new Uint8Array(0), new Set(partitions), (k) => this.o.sm.partitionOf(k), (key) => {
      keys.push(Buffer.from(key));
      return true;
    });
    await this.proposePurges(keys, target);
    return keys.length;
  }

  /**
   * A read barrier taken as the leader. A leader's barrier always settles (a step-down fails it);
   * a follower's is a ReadIndex to the leader that nothing times out, and one lost on the way
   * would hold this pass, and every later one (`running`), forever. So a deposed leader stops here.
   */
  private async barrier(): Promise<void> {
    if (!this.o.replica.isLeader) throw new Error('no longer the leader of the group');
    await this.o.replica.readBarrier();
  }

  /** Deletes these keys through the log, PURGE_BATCH keys an entry, one entry at a time. */
  private async proposePurges(keys: readonly Uint8Array[], target: number): Promise<void> {
    for (let i = 0; i < keys.length; i += PURGE_BATCH) await this.propose(encodePurge(keys.slice(i, i + PURGE_BATCH), target));
  }

  private async propose(data: Uint8Array): Promise<void> {
    const r = await this.o.replica.propose(data);
    if (r.kind === 'error') throw new Error(r.error.message);
  }

  /**
   * A hand-off request to the source group (src/cluster/group-call.ts): its leader first, NOT_LEADER
   * hints followed, transient answers retried for a bounded time. Freeze and export are idempotent,
   * so asking again is safe; the reconciler retries the whole step after a failure anyway.
   */
  private async call(config: ClusterConfig, group: number, encode: (id: number) => Uint8Array): Promise<{ type: number; body: Uint8Array }> {
    const g = groupOf(config, group);
    if (!g) throw new Error(`source group ${group} is not in the configuration`);
    let answer: { type: number; body: Uint8Array } | undefined;
    const out = await callGroup({
      replicas: g.replicas.map((r) => r.address),
      leader: this.sourceLeaders.get(group),
      kind: 'write', // the source's leader carries out a hand-off request
      resendSafe: true,
      deadline: Date.now() + CALL_MS,
      pacing: this.responsiveness,
      send: async (addr, waitMs) => {
        const f = await this.conn(addr).call(encode, waitMs);
        if (f.type === HandoffType.ExportChunk) {
          answer = f;
          return { kind: 'ok' };
        }
        const res: Response = decodeResponse(f.type, f.body);
        if (res.kind === 'ok') answer = f;
        return res;
      },
      onLeader: (addr) => (addr === undefined ? this.sourceLeaders.delete(group) : this.sourceLeaders.set(group, addr)),
    });
    if (out.t !== 'answer') throw new Error(out.message);
    if (out.res.kind === 'ok' && answer) return answer;
    throw new Error(out.res.kind === 'error' ? `group ${group}: ${out.res.error.code}: ${out.res.error.message}` : `unexpected ${out.res.kind}`);
  }

  private conn(addr: string): Connection {
    let c = this.conns.get(addr);
    if (!c) {
      c = new Connection(addr);
      this.conns.set(addr, c);
    }
    return c;
  }
}

/** Completes the moves of these partitions to `group` in the latest configuration (no other move of them). */
function completeMovesTo(c: ClusterConfig, group: number, partitions: readonly number[]): ClusterConfig {
  const wanted = new Set(partitions);
  return completeMoves(c, c.moves.filter((m) => m.to === group && wanted.has(m.partition)).map((m) => m.partition));
}
