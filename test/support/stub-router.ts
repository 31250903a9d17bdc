// A Router over a stub replica, for tests of the request path's own decisions (size limits,
// deadlines, scan pages, ownership) without Raft or peers. Whatever a test does not give fails
// loudly if used: a forward rejects, an absent replica method throws.
import type { Replica } from '../../src/replica/replica.ts';
import { Router, type RawRequest, type RouterOptions } from '../../src/router/router.ts';
import { encodeRequest, type Request, type Response } from '../../src/wire/index.ts';

/** The replica members a test drives (isLeader, leader, leaderlessForMs, propose, readBarrier, visibleBarrier). */
export type StubReplica = Partial<Pick<Replica, 'isLeader' | 'leader' | 'leaderlessForMs' | 'propose' | 'readBarrier' | 'visibleBarrier'>>;

export function stubRouter(o: Omit<Partial<RouterOptions>, 'replica'> & { replica?: StubReplica } = {}): Router {
  return new Router({
    reader: { get: () => null, scan: () => ({ items: [], more: null }), count: () => 0 },
    forwarder: { forward: () => Promise.reject(new Error('unexpected forward')), addressOf: () => '' },
    checkSizes: () => {},
    requestTimeoutMs: 5000,
    status: () => ({ kind: 'ok' }),
    ...o,
    replica: (o.replica ?? {}) as Replica,
  });
}

/** The request as its door hands it on: type and body of its encoded frame. */
export function rawOf(req: Request, hops = 0): RawRequest {
  const frame = encodeRequest(1, req);
  return { type: frame[4]!, body: frame.subarray(9), hops };
}

/** `router.local` with the request's own frame; the deadline defaults to 5 s from now. */
export function callLocal(router: Router, req: Request, o: { hops?: number; deadline?: number } = {}): Promise<Response> {
  return router.local(req, rawOf(req, o.hops), o.deadline ?? Date.now() + 5000);
}
