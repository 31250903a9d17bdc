// The links to every other replica of the group: groups a Ready's messages by destination and
// sends each peer's share as few frames as possible.
import type { Message } from '../raft/types.ts';
import { encodeRaftMessages, type Frame, type Hello } from '../wire/index.ts';
import { PeerLink } from './peer-link.ts';
import type { Tap } from './tap.ts';

export interface PeerAddress {
  id: number;
  address: string;
}

export class Peers {
  private readonly links = new Map<number, PeerLink>();

  constructor(self: Hello, peers: PeerAddress[], tap?: Tap) {
    for (const p of peers) this.links.set(p.id, new PeerLink({ self, peerId: p.id, address: p.address, tap }));
  }

  send(msgs: Message[]): void {
    const byPeer = new Map<number, Message[]>();
    for (const m of msgs) {
      const list = byPeer.get(m.to);
      if (list) list.push(m);
      else byPeer.set(m.to, [m]);
    }
    for (const [to, list] of byPeer) this.links.get(to)?.send(encodeRaftMessages(list));
  }

  forward(to: number, type: number, body: Uint8Array, hops: number, timeoutMs: number): Promise<Frame> {
    const link = this.links.get(to);
    if (!link) return Promise.reject(new Error(`no link to replica ${to}`));
    return link.forward(type, body, hops, timeoutMs);
  }

  stats(): { id: number; connected: boolean; framesSent: number; dropped: number }[] {
    return [...this.links.values()].map((l) => ({ id: l.peerId, connected: l.connected, framesSent: l.stats.framesSent, dropped: l.stats.dropped }));
  }

  close(): void {
    for (const l of this.links.values()) l.close();
  }
}
