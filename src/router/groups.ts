// Connections from this replica to the replicas of other shard groups, for requests whose key
// another group owns: the group's leader is tried first (learned from NOT_LEADER hints), then any
// replica of the group.
import { Connection, ConnectionError } from '../client/connection.ts';
import type { ClusterConfig } from '../placement/config.ts';
import { decodeResponse, encodeForward, encodeRequest, type Request, type Response } from '../wire/index.ts';

export class GroupConnections {
  private readonly conns = new Map<string, Connection>();
  private readonly leaders = new Map<number, string>();

  constructor(private readonly config: () => ClusterConfig | undefined) {}

  /** Sends to group `g`; connection failures move on to its next replica until the deadline. */
  async send(g: number, req: Request, deadline: number): Promise<Response> {
    const group = this.config()?.groups.find((x) => x.id === g);
    if (!group || group.replicas.length === 0) {
      return { kind: 'error', error: { code: 'UNAVAILABLE', message: `group ${g} is not in the configuration` } };
    }
    const order = [...group.replicas.map((r) => r.address)];
    const leader = this.leaders.get(g);
    if (leader && order.includes(leader)) order.unshift(leader);
    let last: Response = { kind: 'error', error: { code: 'UNAVAILABLE', message: `no replica of group ${g} answered` } };
    const native = encodeRequest(0, req);
    for (const addr of order) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      try {
        // Relayed as FORWARD with hops 1: the receiving group serves it itself, never routes it on.
        const f = await this.connection(addr).call((id) => encodeForward(id, { type: native[4]!, hops: 1, body: native.subarray(9) }), left);
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
        if (this.leaders.get(g) === addr) this.leaders.delete(g);
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
