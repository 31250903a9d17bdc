// The links to every other replica of the group: groups a Ready's messages by destination and
// sends each peer's share as few frames as possible. The set follows the group's membership
// (setPeers); a message to a replica without a link is dropped, which Raft tolerates.
import { MsgType, type Message } from '../raft/types.ts';
import { CHANNEL_PREFIX_BYTES, DEFAULT_MAX_FRAME_BYTES, PROTOCOL_VERSION, encodeRaftMessages, type Frame, type Hello } from '../wire/index.ts';
import { LinkError } from './carrier.ts';
import { PeerLink } from './peer-link.ts';
import type { LinkHub } from './link-hub.ts';
import type { Tap } from './tap.ts';

/** The largest frame of Raft messages a link sends: a riding pair's frame gets a CHANNEL prefix. */
export const RAFT_FRAME_LIMIT = DEFAULT_MAX_FRAME_BYTES - CHANNEL_PREFIX_BYTES;

/**
 * What a peer of protocol `version` reads (a rolling upgrade): a protocol 1 replica rejects a
 * heartbeat's flags byte (it never goes quiet), one below 4 an answer's flags byte (its leader
 * never learns a follower is blank, and refuses no membership change for it).
 */
function forProtocol(version: number, m: Message): Message {
  if (version < 2 && m.type === MsgType.Heartbeat && m.quiet) {
    const { quiet: _, ...plain } = m;
    return plain;
  }
  if (version < 4 && (m.type === MsgType.AppendResp || m.type === MsgType.HeartbeatResp) && m.blank) {
    const { blank: _, ...plain } = m;
    return plain;
  }
  return m;
}

export interface PeerAddress {
  id: number;
  address: string;
}

export class Peers {
  private readonly links = new Map<number, PeerLink>();
  /**
   * Closed with the replica: a Ready persisting at its stop still sends afterwards, and the send
   * syncs the links first (MemberLinks): a link opened then would dial forever, and take the hub's
   * peerUp from the links of the replica's next start in this process.
   */
  private closed = false;

  constructor(
    private readonly self: Hello,
    peers: PeerAddress[],
    private readonly tap?: Tap,
    /** The process's links (link-hub.ts); default: each link dials its own connection. */
    private readonly hub?: LinkHub,
  ) {
    this.setPeers(peers);
  }

  /** Makes the links exactly `peers`: new ones dialed, gone ones closed, moved ones redialed. */
  setPeers(peers: PeerAddress[]): void {
    if (this.closed) return;
    const want = new Map(peers.map((p) => [p.id, p.address]));
    for (const [id, link] of this.links) {
      if (want.has(id)) continue;
      link.close();
      this.links.delete(id);
    }
    for (const [id, address] of want) {
      const link = this.links.get(id);
      if (link) link.setAddress(address);
      else this.links.set(id, new PeerLink({ self: this.self, peerId: id, address, tap: this.tap, hub: this.hub }));
    }
  }

  /** The replicas this one has a link to. */
  ids(): number[] {
    return [...this.links.keys()].sort((a, b) => a - b);
  }

  send(msgs: Message[]): void {
    const byPeer = new Map<number, Message[]>();
    for (const m of msgs) {
      const list = byPeer.get(m.to);
      if (list) list.push(m);
      else byPeer.set(m.to, [m]);
    }
    for (const [to, list] of byPeer) {
      const link = this.links.get(to);
      // Frames sized so that they still fit once wrapped in a CHANNEL prefix (a pair riding another
      // pair's connection): the acceptor holds every frame to the same limit.
      if (link) {
        const version = link.peerVersion;
        link.send(encodeRaftMessages(version >= PROTOCOL_VERSION ? list : list.map((m) => forProtocol(version, m)), RAFT_FRAME_LIMIT));
      }
    }
  }

  forward(to: number, type: number, body: Uint8Array, hops: number, timeoutMs: number): Promise<Frame> {
    const link = this.links.get(to);
    // Never sent (e.g. a new member whose address is not known yet): safe for the router to retry.
    if (!link) return Promise.reject(new LinkError(`no link to replica ${to}`, false));
    return link.forward(type, body, hops, timeoutMs);
  }

  stats(): { id: number; connected: boolean; framesSent: number; dropped: number }[] {
    return [...this.links.values()].map((l) => ({ id: l.peerId, connected: l.connected, framesSent: l.stats.framesSent, dropped: l.stats.dropped }));
  }

  close(): void {
    this.closed = true;
    for (const l of this.links.values()) l.close();
    this.links.clear();
  }
}
