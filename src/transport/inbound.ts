// The accepting side of a replica link: after the handshake, Raft frames go to the local replica and
// forwarded client requests to the router, whose answers go back on the same connection. Frames of
// other replica pairs between the two processes arrive inside CHANNEL frames and go to the replica
// of this process they name (protocol.md §6.5), through the process's link hub.
import {
  BadRequestError,
  FrameType,
  MAX_BATCH_OPS,
  decodeChannel,
  decodeForward,
  decodeRaftFrame,
  decodeRequest,
  encodeChannelPrefix,
  encodeHello,
  encodeResponse,
  isRaftFrame,
  type ChannelFrame,
  type Frame,
  type Hello,
  type Response,
} from '../wire/index.ts';
import type { Message } from '../raft/types.ts';
import type { Request } from '../wire/index.ts';
import type { Forwarded } from '../wire/forward.ts';
import type { FrameSocket } from './frame-socket.ts';
import type { Tap } from './tap.ts';
import { KEEPALIVE_MS } from './carrier.ts';
import type { HostedReplica, LinkHub } from './link-hub.ts';
import { every } from '../timers/every.ts';

export interface InboundHandlers {
  self: Hello;
  /** Whether a replica may join this link (same group, known id). */
  accept(hello: Hello): string | undefined;
  onRaft(msgs: Message[]): void;
  /** `raw` is the request as it arrived, so relaying it onward never re-encodes it. */
  execute(req: Request, raw: Forwarded): Promise<Response>;
  /** Sees the frames this side writes: its HELLO and the answers to forwards. */
  tap?: Tap;
  /** How often to say "alive" on the link (default KEEPALIVE_MS; tests use less). */
  keepaliveMs?: number;
  /** The process's links: named in the HELLO answer, it serves the pairs that ride this connection. */
  hub?: LinkHub;
}

export function servePeerLink(conn: FrameSocket, hello: Hello, h: InboundHandlers): void {
  const refusal = h.accept(hello);
  if (refusal) {
    conn.write(encodeResponse(0, { kind: 'error', error: { code: 'BAD_REQUEST', message: refusal } }));
    conn.socket.end();
    return;
  }
  const send = (frame: Buffer): void => {
    h.tap?.(h.self.replicaId, hello.replicaId, frame);
    conn.write(frame);
  };
  // A dialer of version 3 or more learns which process answered, so its other links to this
  // process can ride this connection; an older one gets the HELLO it reads.
  const ownHello = encodeHello(h.hub && hello.version >= 3 ? { ...h.self, process: h.hub.process } : h.self);
  send(ownHello);
  // Keepalive: the dialing side replaces a link that hears nothing for a while (carrier.ts). A
  // HELLO after the handshake is ignored there (no forward waits for request id 0).
  // On the process's shared timer: every link of the process says it in the same wake-up.
  const stopKeepalive = every(h.keepaliveMs ?? KEEPALIVE_MS, () => conn.write(ownHello));
  conn.socket.once('close', stopKeepalive);
  const own: HostedReplica = { onRaft: h.onRaft, execute: h.execute, ...(h.tap ? { tap: h.tap } : {}) };
  // The peer is up (it just dialed us): our own link to it may be waiting out a backoff.
  h.hub?.peerUp(hello.groupId, h.self.replicaId, hello.replicaId);
  conn.onFrame = (f: Frame) => {
    try {
      if (f.type === FrameType.Channel) return riding(conn, h.hub, decodeChannel(f.body));
      // A shared connection lives on for the other pairs once its replica stopped (the server
      // hands it to the hub): the opening pair is told its replica is not hosted here any more.
      if (!h.hub?.adopted(conn.socket)) {
        // Any frame says so too: it may arrive before our link noticed its old connection died.
        h.hub?.peerUp(hello.groupId, h.self.replicaId, hello.replicaId);
        serve(own, f, (res) => send(encodeResponse(f.requestId, res)));
      } else notHosted(f.requestId, h.self.groupId, h.self.replicaId, (id, res) => send(encodeResponse(id, res)));
    } catch (e) {
      if (!(e instanceof BadRequestError)) throw e;
      conn.socket.destroy(); // a peer speaking garbage: drop the link, it will reconnect
    }
  };
}

/** One frame for replica `r`: Raft messages it steps, or a forwarded request it answers. */
function serve(r: HostedReplica, f: Frame, answer: (res: Response) => void): void {
  if (isRaftFrame(f.type) || f.type === FrameType.RaftBatch) {
    r.onRaft(decodeRaftFrame(f.type, f.body));
  } else if (f.type === FrameType.Forward) {
    const fwd = decodeForward(f.body);
    // A replica forwards only batches its router let through: a bigger one is a bogus peer's, and
    // decoding its ops first would stall this process for seconds.
    const req = decodeRequest(fwd.type, fwd.body, { maxBatchOps: MAX_BATCH_OPS });
    // The router answers failures itself; a rejection here would be a bug, and unhandled it would
    // end the process: the relaying replica gets it as an answer instead.
    void r.execute(req, { type: fwd.type, body: fwd.body, hops: fwd.hops }).then(answer, (e: unknown) =>
      answer({ kind: 'error', error: { code: 'UNAVAILABLE', message: `request failed: ${e instanceof Error ? e.message : String(e)}` } }),
    );
  } else {
    throw new BadRequestError(`unexpected frame 0x${f.type.toString(16)} on a replica link`);
  }
}

/** A frame of another pair riding this connection: to the hosted replica it names, answers wrapped back. */
function riding(conn: FrameSocket, hub: LinkHub | undefined, c: ChannelFrame): void {
  const target = hub?.hostedReplica(c.group, c.to);
  const back = { group: c.group, from: c.to, to: c.from };
  const reply = (requestId: number, res: Response): void => {
    const inner = encodeResponse(requestId, res);
    target?.tap?.(c.to, c.from, inner);
    conn.write(encodeChannelPrefix(back, inner));
    conn.write(inner);
  };
  if (target) {
    hub?.peerUp(c.group, c.to, c.from);
    return serve(target, c.frame, (res) => reply(c.frame.requestId, res));
  }
  notHosted(c.frame.requestId, c.group, c.to, reply);
}

/**
 * Replica `to` is not hosted here (stopped, moved, or never): a forward is answered as never run,
 * and request id 0 tells the dialer to go to the replica's own address (protocol.md §6.5).
 */
function notHosted(requestId: number, group: number, to: number, reply: (requestId: number, res: Response) => void): void {
  const error = { code: 'UNAVAILABLE' as const, message: `replica ${to} of group ${group} is not hosted by this process` };
  if (requestId !== 0) reply(requestId, { kind: 'error', error });
  reply(0, { kind: 'error', error });
}
