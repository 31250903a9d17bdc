// Cross-group routing: key → partition → the group that serves it (the source while a hand-off is
// pending, then the destination), served here or sent to that group. A WRONG_GROUP answer means our
// configuration is stale or a hand-off is under way: refresh, back off, retry until the deadline.
// Multi-key operations are split per partition and gathered; scans fan out to every group and merge,
// counts fan out and add up.
import type { Partitioner } from '../partition/index.ts';
import { routeOf, type ClusterConfig } from '../placement/config.ts';
import { SCAN_PAGE_BYTES, batchTooLarge, encodeRequest, isStaleWrite, type KeyValue, type Request, type Response, type WireError } from '../wire/index.ts';
import { batchFailure, splitBatch } from '../cluster/split-batch.ts';
import { unknownOutcome } from '../cluster/group-call.ts';
import type { ConfigWatcher } from '../cluster/config-watcher.ts';
import type { GroupConnections } from './groups.ts';
import type { RawRequest } from './router.ts';
import { localFollower, localLeader } from './local-groups.ts';

export interface ShardRoutesOptions {
  group: number;
  watcher: ConfigWatcher;
  partitioner: Partitioner;
  groups: GroupConnections;
  /** The group-local request path. */
  local: (req: Request, raw: RawRequest, deadline: number) => Promise<Response>;
  /** Why a request can never succeed (keys and values over the limits: Router.refusal), checked before a batch is split. */
  refusal?: (req: Request) => WireError | undefined;
  /**
   * How long a linearizable read may wait on a follower hosted here before it goes to the group
   * over TCP instead (one cut off from its leader still names it until an election timeout
   * passes). 500 ms by default.
   */
  hostedReadTryMs?: number;
}

/** Answers after which a read that a hosted follower could not serve goes to the group instead. */
const TRY_ELSEWHERE = new Set(['NOT_LEADER', 'TIMEOUT', 'UNAVAILABLE']);

export class ShardRoutes {
  /**
   * remote: sent over TCP to another group; hosted: handed to its leader in this process;
   * hostedReads: linearizable reads served by a follower in this process (hostedReadsMissed: of
   * those, the ones it could not serve, sent on over TCP); ownReadsElsewhere: reads of this
   * group's keys sent to its other replicas because this one answered NOT_LEADER.
   */
  readonly stats = { remote: 0, hosted: 0, hostedReads: 0, hostedReadsMissed: 0, ownReadsElsewhere: 0, wrongGroup: 0 };

  constructor(private readonly o: ShardRoutesOptions) {}

  async execute(req: Request, raw: RawRequest, deadline: number): Promise<Response> {
    switch (req.op) {
      case 'get':
      case 'put':
      case 'delete':
      case 'cas':
        return this.keyed(req.key, req, raw, deadline);
      case 'batch':
        return this.batch(req, raw, deadline);
      case 'scan':
        return this.scan(req, raw, deadline);
      case 'count':
        return this.count(req, raw, deadline);
      default:
        return this.o.local(req, raw, deadline);
    }
  }

  /** One key: try the serving group (and the hand-off destination) until one answers for it. */
  private async keyed(key: Uint8Array, req: Request, raw: RawRequest, deadline: number): Promise<Response> {
    const p = this.o.partitioner.partitionOf(key);
    let attempt = 0;
    // Why an earlier attempt of this write may have applied (the relay resent it after one went
    // unanswered, then heard WRONG_GROUP): a later "not applied" answer, or stale (a later write
    // of the session applied), is then TIMEOUT, as in callGroup.
    let doubt: string | undefined;
    const settled = (res: Response): Response =>
      doubt !== undefined && res.kind === 'error' && (NOT_APPLIED.has(res.error.code) || isStaleWrite(res)) ? { kind: 'error', error: { code: 'TIMEOUT', message: unknownOutcome(`${res.error.code}: ${res.error.message}; ${doubt}`) } } : res;
    for (;;) {
      const config = await this.config(deadline);
      if (!config) return settled(unavailable('no cluster configuration yet'));
      const route = routeOf(config, p);
      let last: Response | undefined;
      for (const g of route.next === undefined ? [route.group] : [route.group, route.next]) {
        last = await this.send(g, req, raw, deadline, (why) => (doubt = why));
        if (!isWrongGroup(last)) return settled(last);
      }
      this.stats.wrongGroup++;
      void this.o.watcher.refresh();
      if (Date.now() + backoffMs(attempt) >= deadline) return settled(last ?? unavailable('no group serves this key'));
      await sleep(backoffMs(attempt++));
    }
  }

  private async send(g: number, req: Request, raw: RawRequest, deadline: number, onDoubt?: (why: string) => void): Promise<Response> {
    if (g === this.o.group) {
      const res = await this.o.local(req, raw, deadline);
      // This replica answers NOT_LEADER at once when cut off from its leader for long (stranded);
      // another replica of the group may still serve a read (a follower it can reach confirms
      // the read point with the leader), as for another group's keys.
      if (!isLinearizableRead(req) || res.kind !== 'error' || res.error.code !== 'NOT_LEADER' || Date.now() >= deadline) return res;
      this.stats.ownReadsElsewhere++;
      this.stats.remote++;
      return this.o.groups.send(g, req, deadline);
    }
    const here = localLeader(this.o.watcher, g);
    if (here) {
      this.stats.hosted++;
      return here.local(req, raw, deadline);
    }
    const follower = isLinearizableRead(req) ? localFollower(this.o.watcher, g) : undefined;
    if (follower) {
      this.stats.hostedReads++;
      const res = await follower.local(req, raw, Math.min(deadline, Date.now() + (this.o.hostedReadTryMs ?? 500)));
      // A read changes nothing, so one the follower could not serve may go elsewhere.
      if (res.kind !== 'error' || !TRY_ELSEWHERE.has(res.error.code) || Date.now() >= deadline) return res;
      this.stats.hostedReadsMissed++;
    }
    this.stats.remote++;
    return this.o.groups.send(g, req, deadline, onDoubt);
  }

  /**
   * A batch spanning partitions becomes one batch per partition. Each carries a session id derived
   * from (clientId, partition): sessions move with their partition, so a part retried after a
   * hand-off still applies exactly once (docs/resharding.md). Atomic only within a partition.
   */
  private async batch(req: Extract<Request, { op: 'batch' }>, raw: RawRequest, deadline: number): Promise<Response> {
    // Refused whole, before its parts (each under the bound) go anywhere.
    // So is a batch with one op over the limits: its parts would otherwise apply where they pass.
    const refused = batchTooLarge(req) ?? this.o.refusal?.(req);
    if (refused) return { kind: 'error', error: refused };
    const parts = splitBatch(req, (key) => this.o.partitioner.partitionOf(key));
    if (parts.length === 1 && parts[0]!.req === req) return this.keyed(req.ops[0]!.key, req, raw, deadline);
    const results = await Promise.all(parts.map(({ req: sub }) => this.keyed(sub.ops[0]!.key, sub, encodeRaw(sub), deadline)));
    const failed = results.flatMap((r) => (r.kind === 'error' ? [r.error] : []));
    const failure = batchFailure<WireError>(failed, results.length, (e) => e, (message) => ({ code: 'TIMEOUT', message }));
    return failure ? { kind: 'error', error: failure } : { kind: 'ok' };
  }

  /** Every group's page from `start`, merged in key order; `more` is where the next page starts. */
  private async scan(req: Extract<Request, { op: 'scan' }>, raw: RawRequest, deadline: number): Promise<Response> {
    const refused = this.o.refusal?.(req);
    if (refused) return { kind: 'error', error: refused };
    const config = await this.config(deadline);
    if (!config) return unavailable('no cluster configuration yet');
    const pages = await Promise.all(config.groups.map((g) => this.send(g.id, req, raw, deadline)));
    const items: KeyValue[] = [];
    let more: Uint8Array | null = null;
    for (const page of pages) {
      if (page.kind === 'error') return page;
      if (page.kind !== 'scan') return unavailable(`unexpected ${page.kind} answer to a scan`);
      items.push(...page.items);
      if (page.more && (more === null || Buffer.compare(page.more, more) < 0)) more = page.more;
    }
    items.sort((a, b) => Buffer.compare(a.key, b.key));
    const limit = req.limit === 0 ? items.length : req.limit;
    if (items.length > limit) {
      // Past the limit, the first key left out is where to resume (no group skipped anything before it).
      const resume = items[limit]!.key;
      if (more === null || Buffer.compare(resume, more) < 0) more = resume;
    }
    const page = (more === null ? items : items.filter((kv) => Buffer.compare(kv.key, more!) < 0)).slice(0, limit);
    // Each group's page fits a frame; together they may not: cut at the byte bound too.
    let bytes = 0;
    for (let i = 0; i < page.length; i++) {
      bytes += page[i]!.key.length + page[i]!.value.length;
      if (i > 0 && bytes > SCAN_PAGE_BYTES) return { kind: 'scan', items: page.slice(0, i), more: page[i]!.key };
    }
    return { kind: 'scan', items: page, more };
  }

  /** Every group's count of the keys it serves, summed (each key is served by exactly one group). */
  private async count(req: Extract<Request, { op: 'count' }>, raw: RawRequest, deadline: number): Promise<Response> {
    const config = await this.config(deadline);
    if (!config) return unavailable('no cluster configuration yet');
    const answers = await Promise.all(config.groups.map((g) => this.send(g.id, req, raw, deadline)));
    let count = 0;
    for (const a of answers) {
      if (a.kind === 'error') return a;
      if (a.kind !== 'count') return unavailable(`unexpected ${a.kind} answer to a count`);
      count += a.count;
    }
    return { kind: 'count', count };
  }

  private async config(deadline: number): Promise<ClusterConfig | undefined> {
    const c = this.o.watcher.current;
    if (c) return c;
    try {
      return await this.o.watcher.waitFor(1, Math.max(0, deadline - Date.now()));
    } catch {
      return undefined;
    }
  }
}

function isLinearizableRead(req: Request): boolean {
  return (req.op === 'get' || req.op === 'scan' || req.op === 'count') && req.consistency === 'linearizable';
}

export function isWrongGroup(r: Response): boolean {
  return r.kind === 'error' && r.error.code === 'WRONG_GROUP';
}

/** Answers that say the request was not applied. */
const NOT_APPLIED: ReadonlySet<string> = new Set(['NOT_LEADER', 'UNAVAILABLE', 'WRONG_GROUP']);

function unavailable(message: string): Response {
  return { kind: 'error', error: { code: 'UNAVAILABLE', message } };
}



/** The local path proposes a request's native encoding: build it for a derived request. */
function encodeRaw(req: Request): RawRequest {
  const frame = encodeRequest(0, req);
  return { type: frame[4]!, body: frame.subarray(9), hops: 0 };
}

function backoffMs(attempt: number): number {
  return Math.min(200, 10 * 2 ** attempt) * (0.5 + Math.random() / 2);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
