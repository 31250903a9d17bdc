// Starts the front doors a replica's config asks for (RESP, gRPC, HTTP with WebSocket) and hands
// them the one request path (the router) and read-only views of the replica. The native door is
// the server's own listener (it shares its port with the replica links) and is not started here.
import { startGrpcDoor } from '../doors/grpc-door.ts';
import { startHttpDoor } from '../doors/http-door.ts';
import { Readiness } from '../doors/readiness.ts';
import { startRespDoor } from '../doors/resp-door.ts';
import type { Door, DoorContext, NodeStatus } from '../doors/door-context.ts';
import type { Replica } from '../replica/replica.ts';
import type { RequestPath } from '../router/request-path.ts';
import type { Store } from '../storage/index.ts';
import type { Peers } from '../transport/peers.ts';
import type { ServerConfig } from './config.ts';
import type { ServerMetrics } from './metrics.ts';
import type { Logger } from '../log/logger.ts';

export interface DoorParts {
  config: ServerConfig;
  /** The native door's address as bound (the server's own listener); default: as configured. */
  nativeAddress?: string;
  /** The request path every door calls. */
  path: RequestPath;
  replica: Replica;
  store: Store;
  peers: Peers;
  metrics: ServerMetrics;
  startedAt: number;
  /** Partition-table epoch this replica has applied. */
  epoch?: () => number;
  /** Why this replica cannot serve user keys yet beyond Raft (configuration not applied, routes not ready), or undefined. */
  notServing?: () => string | undefined;
  log: Logger;
}

export interface Doors {
  /**
   * door name → address as bound, native included (for status pages, INFO and the log): after a
   * fallback from [::] it says 0.0.0.0; a wildcard is where a door listens, not an address to dial.
   */
  readonly endpoints: Record<string, string>;
  close(): Promise<void>;
}

export function nodeStatus(p: DoorParts, endpoints: Record<string, string>): NodeStatus {
  const s = p.replica.node.status;
  const addressOf = (id: number): string => p.config.replicas.find((r) => r.id === id)?.address ?? '';
  const links = new Map(p.peers.stats().map((l) => [l.id, l.connected]));
  const progress = new Map(s.progress.map((pr) => [pr.id, pr]));
  return {
    replicaId: p.config.id,
    groupId: p.config.group,
    role: s.role,
    term: s.term,
    leaderId: s.leader,
    leaderAddr: s.leader ? addressOf(s.leader) : '',
    commitIndex: s.commit,
    appliedIndex: s.applied,
    firstIndex: s.firstIndex,
    lastIndex: s.lastIndex,
    epoch: p.epoch?.() ?? 0,
    blank: s.blank,
    peers: p.config.replicas
      .filter((r) => r.id !== p.config.id)
      .map((r) => {
        const pr = progress.get(r.id);
        return { id: r.id, address: r.address, connected: links.get(r.id) ?? false, ...(pr ? { match: pr.match, next: pr.next, state: pr.state, blank: pr.blank } : {}) };
      }),
    uptimeSeconds: (Date.now() - p.startedAt) / 1000,
    endpoints,
  };
}

export function doorContext(p: DoorParts, endpoints: Record<string, string>): DoorContext {
  const readiness = new Readiness(p.replica, Math.min(1000, p.config.requestTimeoutMs), p.notServing);
  return {
    executor: p.path,
    limits: { maxKeyBytes: p.config.maxKeyBytes, maxValueBytes: p.config.maxValueBytes },
    status: () => nodeStatus(p, endpoints),
    keyCount: () => {
      try {
        return p.store.count();
      } catch {
        return 0;
      }
    },
    ready: () => readiness.check(),
    metricsText: () => p.metrics.render(),
    observe: (door, op, seconds, outcome) => p.metrics.observeRequest(door, op, seconds, outcome),
    connectionOpened: (door) => p.metrics.connectionOpened(door),
    connectionClosed: (door) => p.metrics.connectionClosed(door),
    log: p.log,
  };
}

/** Starts every configured door; if one cannot start, the others are closed and the error thrown. */
export async function startDoors(p: DoorParts): Promise<Doors> {
  const endpoints: Record<string, string> = { native: p.nativeAddress ?? p.config.listen };
  const ctx = doorContext(p, endpoints);
  const started: Door[] = [];
  const closeAll = async (): Promise<void> => {
    await Promise.all(started.map((d) => d.close().catch(() => {})));
  };
  try {
    if (p.config.resp) {
      const d = await startRespDoor(ctx, { listen: p.config.resp, writeLingerMs: p.config.respWriteLingerMs });
      started.push(d);
      endpoints.resp = d.address;
    }
    if (p.config.grpc) {
      const d = await startGrpcDoor(ctx, { listen: p.config.grpc });
      started.push(d);
      endpoints.grpc = d.address;
    }
    if (p.config.http) {
      const d = await startHttpDoor(ctx, { listen: p.config.http });
      started.push(d);
      endpoints.http = d.address;
      endpoints.ws = d.wsUrl;
    }
  } catch (e) {
    await closeAll();
    throw e;
  }
  return { endpoints, close: closeAll };
}
