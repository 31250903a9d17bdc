// The accepting side of a replica link: after the handshake, Raft frames go to the local replica and
// forwarded client requests to the router, whose answers go back on the same connection.
import {
  BadRequestError,
  FrameType,
  decodeForward,
  decodeRaftFrame,
  decodeRequest,
  encodeHello,
  encodeResponse,
  isRaftFrame,
  type Frame,
  type Hello,
  type Response,
} from '../wire/index.ts';
import type { Message } from '../raft/types.ts';
import type { Request } from '../wire/index.ts';
import type { Forwarded } from '../wire/forward.ts';
import type { FrameSocket } from './frame-socket.ts';
import type { Tap } from './tap.ts';
import { KEEPALIVE_MS } from './peer-link.ts';
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
  const ownHello = encodeHello(h.self);
  send(ownHello);
  // Keepalive: the dialing side replaces a link that hears nothing for a while (peer-link.ts). A
  // HELLO after the handshake is ignored there (no forward waits for request id 0).
  // On the process's shared timer: every link of the process says it in the same wake-up.
  const stopKeepalive = every(h.keepaliveMs ?? KEEPALIVE_MS, () => conn.write(ownHello));
  conn.socket.once('close', stopKeepalive);
  conn.onFrame = (f: Frame) => {
    try {
      if (isRaftFrame(f.type) || f.type === FrameType.RaftBatch) {
        h.onRaft(decodeRaftFrame(f.type, f.body));
      } else if (f.type === FrameType.Forward) {
        const fwd = decodeForward(f.body);
        const req = decodeRequest(fwd.type, fwd.body);
        void h.execute(req, { type: fwd.type, body: fwd.body, hops: fwd.hops }).then((res) => send(encodeResponse(f.requestId, res)));
      } else {
        throw new BadRequestError(`unexpected frame 0x${f.type.toString(16)} on a replica link`);
      }
    } catch (e) {
      if (!(e instanceof BadRequestError)) throw e;
      conn.socket.destroy(); // a peer speaking garbage: drop the link, it will reconnect
    }
  };
}
