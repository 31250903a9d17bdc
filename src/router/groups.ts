// Connections from this replica to the replicas of other shard groups, for requests whose key
// another group owns: the group's leader is tried first (learned from NOT_LEADER hints), then any
// replica of the group. One attempt waits a bounded time, and a replica that left one unanswered
// (cut off by a partition) is tried last for a while, so it cannot eat every request's deadline.
import { Connection, ConnectionError } from '../client/connection.ts';
import { Responsiveness } from '../client/responsiveness.ts';
import type { ClusterConfig } from '../placement/config.ts';
import { decodeResponse, encodeForward, encodeRequest, type Request, type Response } from '../wire/index.ts';

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

  /** Sends to group `g`; connection failures move on to its next replica until the deadline. */
  async send(g: number, req: Request, deadline: number): Promise<Response> {
    const group = this.config()?.groups.find((x) => x.id === g);
    if (!group || group.replicas.length === 0) {
      return { kind: 'error', error: { code: 'UNAVAILABLE', message: `group ${g} is not in the configuration` } };
    }
    const addrs = group.replicas.map((r) => r.address);
    const leader = this.leaders.get(g);
    const order = this.responsiveness.responsiveFirst(leader && addrs.includes(leader) ? [leader, ...addrs.filter((a) => a !== leader)] : addrs);
    let last: Response = { kind: 'error', error: { code: 'UNAVAILABLE', message: `no replica of group ${g} answered` } };
    const native = encodeRequest(0, req);
    for (const addr of order) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      try {
        // Relayed as FORWARD with hops 1: the receiving group serves it itself, never routes it on.
        const f = await this.connection(addr).call((id) => encodeForward(id, { type: native[4]!, hops: 1, body: native.subarray(9) }), this.responsiveness.attemptWait(deadline));
        this.responsiveness.answered(addr);
        const res = decodeResponse(f.type, f.body);
        if (res.kind === 'error' && res.error.code === 'NOT_LEADER') {
          if (res.error.leaderAddr) this.leaders.set(g, res.error.leaderAddr);
          last = res;
          continue;
        }
        if (res.kind !== 'error' || res.error.code !== 'UNAVAILABLE') this.leaders.set(g, addr);
        return res;
      } catch (e) {
        if (!(e instanceof ConnectionError)) throw e;
        this.responsiveness.unanswered(addr);
        if (this.leaders.get(g) === addr) this.leaders.delete(g);
        // A write without a session that may have arrived must not be sent again (it could apply
        // twice): its outcome is unknown. Reads and writes with a session are safe to resend.
        if (e.sent && isSessionlessWrite(req)) return { kind: 'error', error: { code: 'TIMEOUT', message: `${e.message} (the write may still apply)` } };
        last = { kind: 'error', error: { code: 'UNAVAILABLE', message: e.message } };
      }
    }
    return last;
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

/** A write the state machine cannot recognise when it comes again (no exactly-once session). */
function isSessionlessWrite(req: Request): boolean {
  return (req.op === 'put' || req.op === 'delete' || req.op === 'cas' || req.op === 'batch') && req.clientId === 0n;
}
