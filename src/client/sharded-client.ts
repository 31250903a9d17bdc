// The partition-aware ("smart") client: it reads the cluster configuration from the placement group
// and sends each single-key request straight to the shard group that serves the key — writes to the
// group's leader (learned from answers and NOT_LEADER hints), reads to any of its replicas — so no
// replica has to relay it. Everything else about KvsClient stays: lanes, exactly-once writes, one
// deadline per call, retries with backoff.
//
// A direct request travels as a relayed one (FORWARD, hops 1), exactly like the requests one group
// relays to another (src/router/groups.ts): the receiving replica serves it itself and never routes
// it on, so a stale table is answered with WRONG_GROUP (→ refresh the configuration at once, retry)
// and a write sent to a follower with NOT_LEADER and the leader's address (→ follow the hint).
// Without a configuration (placement unreachable, nothing loaded yet), or when the owning group
// cannot be reached, a request goes as an ordinary request to any known replica, which routes it
// (server-side routing still works).
//
// Multi-key writes (batch) are split per partition with splitBatch, the server splitter's own
// function: the same parts with the same derived session ids whether the client or a replica splits
// them, so retries stay exactly-once across a reshard and across a switch to the fallback path.
// Scans go to any replica, which fans out to every group and merges.
import { createPartitioner, type Partitioner } from '../partition/index.ts';
import { groupOf, routeOf, type ClusterConfig, type GroupInfo } from '../placement/config.ts';
import type { ConfigWatcher } from '../cluster/config-watcher.ts';
import { placementWatcher } from './placement-watcher.ts';
import { batchFailure, splitBatch } from '../cluster/split-batch.ts';
import { batchTooLarge, decodeResponse, isStaleWrite, encodeForward, encodeRequest, type Request, type Response } from '../wire/index.ts';
import { KvsClient, KvsError, backoff, checkEndpointsArg, type ClientOptions } from './client.ts';
import { ConnectionError } from '../cluster/connection.ts';
import { callGroup, errorVerdict, reportedCause, timeForRetry, unknownOutcome, unreachedMessage } from '../cluster/group-call.ts';

/** Where the configuration comes from: a ConfigWatcher on the placement group (a fake in tests). */
export type ConfigSource = Pick<ConfigWatcher, 'current' | 'refresh' | 'waitFor' | 'onChange' | 'stop'> & Partial<Pick<ConfigWatcher, 'lastError'>>;

export interface ShardedClientOptions extends Omit<ClientOptions, 'endpoints'> {
  /** Native addresses of the placement group's replicas. */
  placement: string[];
  /** Replicas to fall back to before a configuration is known (optional; those of the configuration are added). */
  endpoints?: string[];
  /** Poll the placement group this often (ms); 0: only on WRONG_GROUP. Backs off to maxPollMs while it fails. */
  pollMs?: number;
  maxPollMs?: number;
  /** How long a request waits for the first configuration before it falls back. */
  configWaitMs?: number;
  /** Instead of a ConfigWatcher on `placement` (tests). */
  configSource?: ConfigSource;
}

/**
 * What one attempt at one replica came to. `doubt`: the write may have reached a replica without a
 * definitive answer (sent and unanswered, or TIMEOUT); a call that ends on this carries it to TIMEOUT.
 */
export type Outcome = (
  | { t: 'done'; res: Response }
  | { t: 'wrong-group'; epoch: number; err: KvsError }
  | { t: 'not-leader'; leaderAddr: string; err: KvsError }
  | { t: 'retry'; err: KvsError }
  /** `cause`: the last replica's own error (err's message may sum up several). */
  | { t: 'unreachable'; err: KvsError; cause?: string | undefined }
) & { doubt?: string | undefined };

/** Classifies an answer by the shared retry rule (src/cluster/group-call.ts): success and errors not worth retrying are 'done'. */
export function classify(res: Response): Outcome {
  if (res.kind !== 'error') return { t: 'done', res };
  const e = res.error;
  const err = new KvsError(e.code, e.message);
  switch (errorVerdict(e, true)) {
    case 'wrong-group':
      return { t: 'wrong-group', epoch: e.code === 'WRONG_GROUP' ? e.epoch : 0, err };
    case 'not-leader':
      return { t: 'not-leader', leaderAddr: e.code === 'NOT_LEADER' ? e.leaderAddr : '', err };
    case 'retry':
      return { t: 'retry', err };
    case 'done':
      return { t: 'done', res };
  }
}

/**
 * The replicas of a group in the order to try them: a write starts at the leader we know of (then
 * the others), a read at the next replica in turn (any replica serves linearizable reads).
 */
export function replicaOrder(group: GroupInfo, kind: 'read' | 'write', leader: string | undefined, turn: number): string[] {
  const addrs = group.replicas.map((r) => r.address);
  const n = addrs.length;
  if (n === 0) return [];
  const start = ((turn % n) + n) % n;
  const rotated = [...addrs.slice(start), ...addrs.slice(0, start)];
  if (kind === 'write' && leader !== undefined && addrs.includes(leader)) return [leader, ...rotated.filter((a) => a !== leader)];
  return rotated;
}

/** Which groups to try for partition p, in order: the serving group, then a pending move's destination. */
export function groupsFor(config: ClusterConfig, partition: number): number[] {
  const route = routeOf(config, partition);
  return route.next === undefined ? [route.group] : [route.group, route.next];
}

export class ShardedClient extends KvsClient {
  /** Requests sent straight to a group, through any replica (fallback), WRONG_GROUP answers, configuration refreshes, NOT_LEADER hints, unreachable groups. */
  readonly routing = { direct: 0, fallback: 0, wrongGroup: 0, refreshes: 0, notLeader: 0, unreachable: 0 };

  private readonly watcher: ConfigSource;
  private readonly placement: string[];
  private partitioner: Partitioner | undefined;
  private readonly leaders = new Map<number, string>();
  private readonly pollMs: number;
  private readonly maxPollMs: number;
  private readonly configWaitMs: number;
  private pollTimer: NodeJS.Timeout | undefined;
  private pollFailures = 0;
  private turn = 0;

  constructor(opts: ShardedClientOptions) {
    if (!opts?.configSource) checkEndpointsArg(opts, 'placement');
    if (opts.endpoints !== undefined) checkEndpointsArg(opts, 'endpoints');
    super({ ...opts, endpoints: [...(opts.endpoints ?? [])] });
    if (opts.placement.length === 0 && !opts.configSource) throw new Error('placement endpoints are needed');
    for (const name of ['pollMs', 'maxPollMs', 'configWaitMs'] as const) {
      const v = opts[name];
      const min = name === 'maxPollMs' ? 1 : 0;
      if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < min)) throw new RangeError(`${name} must be a finite number >= ${min} (got ${String(v)})`);
    }
    this.placement = [...opts.placement];
    // A configuration read gives up within half a call's deadline, so a call can still say why it failed.
    this.watcher = opts.configSource ?? placementWatcher(opts.placement, undefined, Math.min(2000, Math.max(250, this.timeoutMs / 2)));
    this.pollMs = opts.pollMs ?? 500;
    this.maxPollMs = opts.maxPollMs ?? 5000;
    this.configWaitMs = opts.configWaitMs ?? 1000;
    this.watcher.onChange((c) => this.learn(c));
    if (this.watcher.current) this.learn(this.watcher.current);
    if (this.pollMs > 0) this.schedulePoll(0);
    else void this.watcher.refresh().then((c) => this.noteRefresh(c));
  }

  /** The configuration the client routes with (undefined: none yet). */
  get config(): ClusterConfig | undefined {
    return this.watcher.current;
  }

  /**
   * Waits until a configuration is known. Rejects with KvsError UNAVAILABLE when none came within
   * `timeoutMs` (the message says why: the placement group's answer or the connection error), or
   * CLOSED.
   */
  async ready(timeoutMs = this.timeoutMs): Promise<ClusterConfig> {
    const c = await this.untilClosed(this.watcher.waitFor(1, timeoutMs)).catch((e: unknown) => {
      if (e instanceof KvsError) throw e;
      throw new KvsError('UNAVAILABLE', e instanceof Error ? e.message : String(e));
    });
    await this.partitionerFor(c);
    return c;
  }

  /** Also stops following the configuration (the placement watcher and its poll timer). */
  override close(): void {
    if (this.isClosed) return;
    clearTimeout(this.pollTimer);
    super.close();
    this.watcher.stop();
  }

  // ---- routing ----------------------------------------------------------------------------------

  protected override async route(req: Request, kind: 'read' | 'write', deadline: number): Promise<Response> {
    switch (req.op) {
      case 'get':
      case 'put':
      case 'delete':
      case 'cas':
        return this.keyed(req.key, req, kind, deadline);
      case 'batch':
        return this.splitWrite(req, deadline);
      default:
        // scan and count (the replica fans out and gathers), status, ping: any replica.
        if (this.endpoints.length === 0 && !(await this.context(deadline)) && this.endpoints.length === 0) throw this.noConfiguration();
        return super.route(req, kind, deadline);
    }
  }

  private async splitWrite(req: Extract<Request, { op: 'batch' }>, deadline: number): Promise<Response> {
    // The servers refuse such a batch whole; its parts would each pass, so refuse it here too.
    const tooMany = batchTooLarge(req);
    if (tooMany) throw new KvsError(tooMany.code, tooMany.message);
    const ctx = req.ops.length > 0 ? await this.context(deadline) : undefined;
    if (!ctx) return this.fallback(req, 'write', deadline);
    // Each part goes to its group with the session id the servers derive for it (split-batch.ts);
    // sent through any replica instead, the whole batch goes, which that replica splits the same
    // way. So every copy of a part carries one id, and a retry on the other path is a duplicate the
    // session answers, never a second apply (found in review: a part applied twice).
    const parts = splitBatch(req, (key) => ctx.partitioner.partitionOf(key));
    if (parts.length === 1) return this.keyed(req.ops[0]!.key, parts[0]!.req, 'write', deadline, req);
    const results = await Promise.allSettled(parts.map(({ req: sub }) => this.keyed(sub.ops[0]!.key, sub, 'write', deadline, req)));
    // A part whose outcome is unknown, or parts applied beside a failed one, make the batch's
    // outcome unknown: report that (TIMEOUT) first, as the server's splitter does (batchFailure).
    const failed = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    const describe = (e: unknown): { code: string; message: string } => (e instanceof KvsError ? e : { code: 'UNAVAILABLE', message: String((e as Error)?.message ?? e) });
    const failure = batchFailure(failed, parts.length, describe, (message) => new KvsError('TIMEOUT', message));
    if (failure !== undefined) throw failure;
    return { kind: 'ok' };
  }

  /** Without a configuration: the whole call through any replica, which routes it. */
  private fallback(req: Request, kind: 'read' | 'write', deadline: number): Promise<Response> {
    this.routing.fallback++;
    return super.route(req, kind, deadline);
  }

  /**
   * One key: straight to the group serving its partition; refresh on WRONG_GROUP; fall back when it
   * is unreachable, sending `whole` (the request `req` was split from) through any replica.
   */
  private async keyed(key: Uint8Array, req: Request, kind: 'read' | 'write', deadline: number, whole: Request = req): Promise<Response> {
    let attempt = 0;
    let last: KvsError = new KvsError('UNREACHABLE', 'no attempt made');
    let viaAnyReplica = false;
    /** Why this write may have been applied already (an attempt that may have arrived, unanswered). */
    let doubt: string | undefined;
    /** Replicas that could not be reached and the last one's error, named when the call fails UNREACHABLE. */
    const unreached = new Set<string>();
    let cause: string | undefined;
    let configless = false;
    for (let first = true; first ? Date.now() < deadline : timeForRetry(deadline); first = false) {
      this.closeSignal.throwIfAborted();
      const ctx = viaAnyReplica ? undefined : await this.context(deadline);
      let o: Outcome;
      if (!ctx) {
        if (!viaAnyReplica) configless = true;
        if (this.endpoints.length === 0) {
          o = { t: 'unreachable', err: this.noConfiguration() };
        } else {
          this.routing.fallback++;
          const addr = this.nextEndpoint();
          o = await this.attempt(addr, whole, false, deadline);
          if (o.t === 'unreachable') unreached.add(addr);
          if (o.t === 'not-leader') o = { t: 'retry', err: o.err, doubt: o.doubt };
        }
        viaAnyReplica = false;
      } else {
        o = await this.toGroups(groupsFor(ctx.config, ctx.partitioner.partitionOf(key)), ctx.config, req, kind, deadline);
        if (o.t === 'wrong-group') {
          this.routing.wrongGroup++;
          last = o.err;
          const fresh = await this.refresh(deadline);
          if (fresh && fresh.epoch > ctx.config.epoch) continue; // a newer table: try it at once
        } else if (o.t === 'unreachable') {
          for (const g of groupsFor(ctx.config, ctx.partitioner.partitionOf(key))) for (const r of groupOf(ctx.config, g)?.replicas ?? []) unreached.add(r.address);
          this.routing.unreachable++;
          void this.refresh(deadline);
          viaAnyReplica = true; // the next attempt goes through any replica
        }
      }
      if (o.t === 'done') {
        // A resend refused as stale says only that this copy did not apply: an earlier round's
        // unanswered attempt may have (callGroup sees only its own round's doubt).
        if (kind === 'write' && doubt !== undefined && isStaleWrite(o.res)) throw new KvsError('TIMEOUT', unknownOutcome(`a later write of this session was applied first; ${doubt}`));
        if (o.res.kind === 'error') throw new KvsError(o.res.error.code, o.res.error.message);
        return o.res;
      }
      if (kind === 'write') doubt = o.doubt ?? (o.err.code === 'TIMEOUT' ? o.err.message : doubt);
      if (o.t === 'unreachable' && unreached.size > 0) cause = reportedCause(cause, o.cause ?? o.err.message, deadline);
      last = o.err;
      attempt++;
      await backoff(attempt, deadline, this.closeSignal);
    }
    // NOT_LEADER, UNAVAILABLE or UNREACHABLE would say "not applied": not so after an unanswered attempt.
    if (doubt !== undefined) throw new KvsError('TIMEOUT', unknownOutcome(`no answer before the deadline; ${doubt}`));
    if (last.code === 'UNREACHABLE' && cause !== undefined) {
      const noConfig = configless && !this.watcher.current ? `; ${this.noConfiguration().message.replace(/ and no endpoint to fall back to$/, '')}` : '';
      throw new KvsError('UNREACHABLE', unreachedMessage(unreached, cause) + noConfig);
    }
    throw last;
  }

  /** No configuration and no replica to fall back to: which placement replicas were asked, and what went wrong. */
  private noConfiguration(): KvsError {
    const why = this.watcher.lastError ?? 'no answer yet';
    return new KvsError('UNREACHABLE', `no cluster configuration from placement ${this.placement.join(', ') || '(none given)'} (${why}) and no endpoint to fall back to`);
  }

  /** Tries the groups in turn (serving group, then a pending move's destination) until one answers for the key. */
  private async toGroups(ids: number[], config: ClusterConfig, req: Request, kind: 'read' | 'write', deadline: number): Promise<Outcome> {
    let o: Outcome = { t: 'wrong-group', epoch: config.epoch, err: new KvsError('WRONG_GROUP', 'no group serves this key') };
    for (const g of ids) {
      const group = groupOf(config, g);
      if (!group || group.replicas.length === 0) continue; // stays WRONG_GROUP: refresh
      o = await this.toGroup(group, req, kind, deadline);
      if (o.t !== 'wrong-group') return o;
    }
    return o;
  }

  /** One pass over a group's replicas (src/cluster/group-call.ts); NOT_LEADER hints are followed and remembered. */
  private async toGroup(group: GroupInfo, req: Request, kind: 'read' | 'write', deadline: number): Promise<Outcome> {
    const out = await callGroup({
      replicas: replicaOrder(group, kind, undefined, this.turn++),
      leader: this.leaders.get(group.id),
      kind,
      resendSafe: kind === 'read' || !('clientId' in req) || req.clientId !== 0n,
      deadline,
      pacing: this.responsiveness,
      send: async (addr, waitMs) => {
        this.routing.direct++;
        const res = await this.send(addr, req, true, waitMs);
        if (res.kind === 'error' && res.error.code === 'NOT_LEADER') this.routing.notLeader++;
        return res;
      },
      onLeader: (addr) => (addr === undefined ? this.leaders.delete(group.id) : this.leaders.set(group.id, addr)),
      passes: 1, // the caller retries: after a refresh, or through any replica when the group is unreachable
      signal: this.closeSignal,
    });
    if (out.t === 'unreachable') return { t: 'unreachable', err: new KvsError('UNREACHABLE', `no replica of group ${group.id} could be reached: ${out.message}`), doubt: out.doubt, cause: out.cause };
    if (out.t === 'unknown') return { t: 'done', res: { kind: 'error', error: { code: 'TIMEOUT', message: out.message } } };
    const o = classify(out.res);
    return o.t === 'not-leader' ? { t: 'retry', err: o.err, doubt: out.doubt } : { ...o, doubt: out.doubt };
  }

  /** One request to one replica, never retried here (the caller decides): relayed or ordinary. */
  private async attempt(addr: string, req: Request, direct: boolean, deadline: number): Promise<Outcome> {
    try {
      const res = await this.send(addr, req, direct, this.responsiveness.attemptWait(deadline));
      this.responsiveness.answered(addr);
      return classify(res);
    } catch (e) {
      if (!(e instanceof ConnectionError)) throw e;
      this.responsiveness.unanswered(addr);
      return { t: 'unreachable', err: new KvsError('UNREACHABLE', e.message), doubt: e.sent ? e.message : undefined };
    }
  }

  /** The network: overridden in tests. Throws ConnectionError when the replica cannot be reached. */
  protected async send(addr: string, req: Request, direct: boolean, timeoutMs: number): Promise<Response> {
    if (!direct) return this.connection(addr).request(req, timeoutMs);
    const native = encodeRequest(0, req);
    const f = await this.connection(addr).call((id) => encodeForward(id, { type: native[4]!, hops: 1, body: native.subarray(9) }), timeoutMs);
    return decodeResponse(f.type, f.body);
  }

  // ---- configuration ----------------------------------------------------------------------------

  /** The configuration and its partitioner; waits a little for the first one, undefined when there is none. */
  private async context(deadline: number): Promise<{ config: ClusterConfig; partitioner: Partitioner } | undefined> {
    let config = this.watcher.current;
    if (!config) {
      // Once a load has failed, do not make every request wait for the placement group: fall back.
      const wait = this.pollFailures > 0 ? 0 : Math.min(this.configWaitMs, deadline - Date.now());
      config = wait > 0 ? await within(this.watcher.refresh(), wait, this.closeSignal) : (void this.watcher.refresh(), undefined);
      if (!config) return undefined;
    }
    return { config, partitioner: await this.partitionerFor(config) };
  }

  private async partitionerFor(c: ClusterConfig): Promise<Partitioner> {
    if (this.partitioner?.partitions !== c.partitions) this.partitioner = await createPartitioner(c.partitions);
    return this.partitioner;
  }

  /** Reads the configuration now (shared with concurrent callers), waiting at most until the deadline. */
  private async refresh(deadline: number): Promise<ClusterConfig | undefined> {
    this.routing.refreshes++;
    const c = await within(this.watcher.refresh(), Math.max(0, deadline - Date.now()), this.closeSignal);
    this.noteRefresh(c);
    return c ?? this.watcher.current;
  }

  private noteRefresh(c: ClusterConfig | undefined): void {
    this.pollFailures = c ? 0 : this.pollFailures + 1;
  }

  private schedulePoll(ms: number): void {
    if (this.isClosed || this.pollMs <= 0) return;
    this.pollTimer = setTimeout(() => {
      void this.watcher
        .refresh()
        .catch(() => undefined)
        .then((c) => {
          this.noteRefresh(c);
          this.schedulePoll(c ? this.pollMs : Math.min(this.maxPollMs, this.pollMs * 2 ** Math.min(this.pollFailures, 10)));
        });
    }, ms);
    this.pollTimer.unref();
  }

  /** A new configuration: its replicas become fallback endpoints; leaders of groups that left are forgotten. */
  private learn(c: ClusterConfig): void {
    const known = new Set(this.endpoints);
    for (const g of c.groups) for (const r of g.replicas) if (!known.has(r.address)) this.endpoints.push(r.address);
    for (const id of [...this.leaders.keys()]) if (!groupOf(c, id)) this.leaders.delete(id);
  }
}

/** p's value, or undefined if it takes longer than ms or the signal aborts first (p keeps running). */
function within<T>(p: Promise<T | undefined>, ms: number, signal: AbortSignal): Promise<T | undefined> {
  if (ms <= 0 || signal.aborted) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const settle = (v: T | undefined): void => {
      clearTimeout(t);
      signal.removeEventListener('abort', onAbort);
      resolve(v);
    };
    const onAbort = (): void => settle(undefined);
    const t = setTimeout(onAbort, ms);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(settle, onAbort);
  });
}
