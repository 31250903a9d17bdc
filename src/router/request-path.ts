// The request path as a composition, chosen once when the server starts: door → placement gate
// (placement replicas: placement-front.ts) → shard routing (sharded.ts) → the local group
// (router.ts). Nothing on the path changes mode after construction.
import type { Request, Response } from '../wire/index.ts';
import { configKeyElsewhere } from './placement-front.ts';
import type { RawRequest, Router } from './router.ts';
import type { ShardRoutes } from './sharded.ts';

/** What every door calls. */
export interface RequestPath {
  execute(req: Request, raw: RawRequest): Promise<Response>;
}

/**
 * A shard replica's path: a client's request is routed by its key; one that another replica
 * relayed (hops > 0) is served by this group, since routing it again could loop.
 */
export function shardPath(routes: ShardRoutes, local: Router): RequestPath {
  return {
    execute: (req, raw) => {
      const elsewhere = configKeyElsewhere(req);
      if (elsewhere) return Promise.resolve(elsewhere);
      return raw.hops === 0 ? routes.execute(req, raw, local.deadline()) : local.execute(req, raw);
    },
  };
}
