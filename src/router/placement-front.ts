// The placement group's replicas as a front door to the sharded store. The placement group is a
// plain Raft group holding one key, the cluster configuration; but its replicas are addresses users
// see first (`kvs up` puts them on ports 7001-7003). Once a configuration exists, they route every
// other key to the shard groups exactly as a shard replica routes keys it does not own, so a client
// pointed at them reads and writes the sharded store instead of a private corner of the placement
// group. Without a configuration (a plain single group) nothing changes: every key is served here.
// Between the configuration's apply here and the routes being ready, user keys get UNAVAILABLE
// (retried by clients) rather than be served from the placement group.
import { createPartitioner } from '../partition/index.ts';
import { CONFIG_KEY, configChangeProblem, decodeConfig, type ClusterConfig } from '../placement/config.ts';
import type { Request, Response } from '../wire/index.ts';
import type { ConfigWatcher } from '../cluster/config-watcher.ts';
import { GroupConnections } from './groups.ts';
import type { RawRequest, Router } from './router.ts';
import { ShardRoutes } from './sharded.ts';
import type { Logger } from '../log/logger.ts';

export const CONFIG_KEY_BYTES = Buffer.from(CONFIG_KEY);

function isDataRequest(req: Request): boolean {
  return req.op !== 'ping' && req.op !== 'status';
}

/** The placement group's own key is served by the placement group, whatever partition it hashes to. */
export function isPlacementKey(req: Request): boolean {
  return 'key' in req && isConfigKey(req.key);
}

function isConfigKey(key: Uint8Array): boolean {
  return key.length === CONFIG_KEY_BYTES.length && Buffer.compare(key, CONFIG_KEY_BYTES) === 0;
}

/** Whether a request reads or writes the configuration key (alone or inside a batch). */
function touchesConfigKey(req: Request): boolean {
  return req.op === 'batch' ? req.ops.some((op) => isConfigKey(op.key)) : isPlacementKey(req);
}

function badRequest(message: string): Response {
  return { kind: 'error', error: { code: 'BAD_REQUEST', message } };
}

/**
 * Why a request to a placement replica may not write the configuration key (undefined when it
 * may). Every watcher adopts what is stored there, so a stray PUT from any door could re-route or
 * break the whole cluster. The tools that change it (`kvs up`, `kvs reshard`, membership changes,
 * the operator) all compare-and-swap a whole configuration with a higher epoch; nothing else is
 * accepted. The CAS makes the epoch check exact: it applies only if the stored value is `expected`.
 */
export function configWriteRefusal(req: Request): Response | undefined {
  if (!touchesConfigKey(req) || req.op === 'get') return undefined;
  const how = `${CONFIG_KEY} holds the cluster configuration: it changes only by compare-and-swap to a whole configuration with a higher epoch (kvs reshard, kvs membership)`;
  if (req.op !== 'cas' || req.value === null) return badRequest(how);
  let next: unknown;
  try {
    next = JSON.parse(Buffer.from(req.value).toString('utf8'));
  } catch {
    return badRequest(`${how}: the new value is not JSON`);
  }
  let prev: ClusterConfig | undefined;
  try {
    prev = req.expected === null ? undefined : decodeConfig(req.expected);
  } catch {
    prev = undefined; // a malformed stored value may be replaced by any valid configuration
  }
  const problem = configChangeProblem(prev, next);
  return problem ? badRequest(`${how}: ${problem}`) : undefined;
}

/**
 * A shard replica's answer to a request naming the configuration key: it lives in the placement
 * group only, so one key never reads differently through different doors.
 */
export function configKeyElsewhere(req: Request): Response | undefined {
  if (!touchesConfigKey(req)) return undefined;
  return badRequest(`${CONFIG_KEY} is reserved for the cluster configuration, which the placement group holds: read it from a placement replica or with "kvs status"`);
}

export class PlacementFront {
  private readonly watcher: ConfigWatcher;
  private readonly unwatch: () => void;
  private groups: GroupConnections | undefined;
  private routing = false;
  /** The routes to the shard groups, once a configuration with groups exists. */
  private routes: ShardRoutes | undefined;

  constructor(
    private readonly o: {
      group: number;
      /** Reads the configuration from this group's own replicas (placementWatcher in client/). */
      watcher: ConfigWatcher;
      router: Router;
      /** Whether this replica's state machine holds a cluster configuration. */
      hasConfig: () => boolean;
      attemptMs: number;
      log: Logger;
    },
  ) {
    this.watcher = o.watcher;
    this.unwatch = this.watcher.onChange((c) => void this.route(c));
  }

  /**
   * The placement replica's request path: the configuration key (and any relayed request) is served
   * by this group; other keys go to their shard groups once the routes exist, and wait until then.
   */
  execute(req: Request, raw: RawRequest): Promise<Response> {
    const refusal = configWriteRefusal(req);
    if (refusal) return Promise.resolve(refusal);
    const routes = this.routes;
    if (routes) return raw.hops === 0 && !isPlacementKey(req) ? routes.execute(req, raw, this.o.router.deadline()) : this.o.router.execute(req, raw);
    const early = this.notYet(req);
    return early ? Promise.resolve(early) : this.o.router.execute(req, raw);
  }

  private notYet(req: Request): Response | undefined {
    if (isPlacementKey(req) || !isDataRequest(req) || !this.o.hasConfig()) return undefined;
    void this.watcher.refresh();
    return { kind: 'error', error: { code: 'UNAVAILABLE', message: 'the cluster configuration is being loaded: retry' } };
  }

  /** Why user keys cannot be served here yet: a configuration exists but the routes to its groups do not (else undefined). */
  notRouting(): string | undefined {
    return !this.routes && this.o.hasConfig() ? 'the routes to the shard groups are not ready yet' : undefined;
  }

  start(): void {
    this.watcher.start();
  }

  stop(): void {
    this.unwatch();
    this.watcher.stop();
    this.groups?.close();
  }

  private async route(config: ClusterConfig): Promise<void> {
    if (this.routing || config.groups.length === 0) return;
    this.routing = true;
    const watcher = this.watcher;
    this.groups = new GroupConnections(() => watcher.current, this.o.attemptMs);
    const routes = new ShardRoutes({
      group: this.o.group,
      watcher,
      partitioner: await createPartitioner(config.partitions),
      groups: this.groups,
      local: (req, raw, deadline) => this.o.router.local(req, raw, deadline),
      refusal: (req) => this.o.router.refusal(req),
    });
    this.routes = routes;
    this.o.log.info('a cluster configuration exists: routing keys to the shard groups', { epoch: config.epoch, groups: config.groups.length });
  }
}
