// Connections from this replica to the replicas of other shard groups, for requests whose key
// another group owns. How a group is called (leader first, silent replicas last, NOT_LEADER hints
// followed, transient answers retried until the deadline) is src/cluster/group-call.ts, shared with
// the client: the RESP, gRPC and HTTP doors' own clients do not retry, so this relay must absorb an
// election or a replica still starting in the other group rather than pass it on.
import { Connection } from '../cluster/connection.ts';
import { Responsiveness } from '../cluster/responsiveness.ts';
import { callGroup } from '../cluster/group-call.ts';
import type { ClusterConfig } from '../placement/config.ts';
import { encodeForward, encodeRequest, type Request, type Response } from '../wire/index.ts';

export class GroupConnections {
  private readonly conns = new Map<string, Connection>();
  private readonly leaders = new Map<number, string>();

  private readonly responsiveness: Responsiveness;

  constructor(
    private readonly config: () => ClusterConfig | undefined,
    /** How long one attempt at one replica may wait for its answer. */
    attemptMs = 1500,
  ) {
    this.responsiveness = new Responsiveness(attemptMs);
  }

  /**
   * Sends to group `g` until an answer worth passing on or the deadline. `onDoubt` hears why a
   * write may have applied although the answer says this attempt did not (WRONG_GROUP after an
   * attempt left unanswered): a caller that sends it on to another group must not answer "not
   * applied" in the end.
   */
  async send(g: number, req: Request, deadline: number, onDoubt?: (why: string) => void): Promise<Response> {
    const group = this.config()?.groups.find((x) => x.id === g);
    if (!group || group.replicas.length === 0) {
      return { kind: 'error', error: { code: 'UNAVAILABLE', message: `group ${g} is not in the configuration` } };
    }
    const native = encodeRequest(0, req);
    const out = await callGroup({
      replicas: group.replicas.map((r) => r.address),
      leader: this.leaders.get(g),
      kind: isWrite(req) ? 'write' : 'read',
      // A write without a session that may have arrived must not be sent again (it could apply twice).
      resendSafe: !isWrite(req) || req.clientId !== 0n,
      deadline,
      pacing: this.responsiveness,
      // Relayed as FORWARD with hops 1: the receiving group serves it itself, never routes it on.
      // An answer that cannot be decoded is an attempt that may have applied (TIMEOUT for a write
      // without a session), as the client library's connection treats it: not "not applied".
      send: (addr, waitMs) => this.connection(addr).exchange((id) => encodeForward(id, { type: native[4]!, hops: 1, body: native.subarray(9) }), waitMs),
      onLeader: (addr) => (addr === undefined ? this.leaders.delete(g) : this.leaders.set(g, addr)),
    });
    switch (out.t) {
      case 'answer':
        if (out.doubt !== undefined) onDoubt?.(out.doubt);
        return out.res;
      case 'unknown':
        return { kind: 'error', error: { code: 'TIMEOUT', message: out.message } };
      case 'unreachable':
        return { kind: 'error', error: { code: 'UNAVAILABLE', message: `no replica of group ${g} answered: ${out.message}` } };
    }
  }

  close(): void {
    for (const c of this.conns.values()) c.close();
    this.conns.clear();
  }

  private connection(addr: string): Connection {
    let c = this.conns.get(addr);
    if (!c) {
      c = new Connection(addr);
      this.conns.set(addr, c);
    }
    return c;
  }
}

function isWrite(req: Request): req is Extract<Request, { op: 'put' | 'delete' | 'cas' | 'batch' }> {
  return req.op === 'put' || req.op === 'delete' || req.op === 'cas' || req.op === 'batch';
}
