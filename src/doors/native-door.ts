// The native client door: request frames in, response frames out, pipelined and answered as they
// complete (out of order; the request id matches them). A malformed body gets BAD_REQUEST and the
// connection carries on; lost framing gets an error frame and the connection is closed.
import {
  BadRequestError,
  FrameType,
  MAX_BATCH_OPS,
  decodeForward,
  decodeRequest,
  encodeResponse,
  frameClass,
  type Frame,
  type Request,
  type Response,
} from '../wire/index.ts';
import type { FrameSocket } from '../transport/frame-socket.ts';
import type { RawRequest } from '../router/router.ts';
import type { Executor } from './door-context.ts';

/** A batch over the op limit is refused from its count, before its ops are decoded. */
const CLIENT_LIMITS = { maxBatchOps: MAX_BATCH_OPS };

export interface NativeDoorOptions {
  /** Requests in flight per connection before we stop reading from it. */
  maxInFlight?: number;
  /** Called for every request (door, op, latency) for metrics. */
  observe?: (op: string, ms: number, ok: boolean) => void;
  /** Frames outside the client request set that this server also answers (partition hand-off). */
  special?: (f: Frame) => Promise<Uint8Array> | undefined;
}

export function serveNativeClient(conn: FrameSocket, router: Executor, opts: NativeDoorOptions = {}): void {
  const maxInFlight = opts.maxInFlight ?? 4096;
  /** Requests being answered, hand-off and membership frames included (they wait long: an add waits for its replica). */
  let inFlight = 0;
  const reply = (requestId: number, res: Response): void => conn.write(encodeResponse(requestId, res));

  // A client that half-closed (`shutdown(SHUT_WR)`, `nc -N`) still gets every answer: close once
  // its last frame was dispatched and nothing is in flight (the server allows half-open sockets).
  /** Framing was lost: nothing more is read, and the connection closes once the requests before it are answered. */
  let framingLost = false;
  const closeIfDone = (): void => {
    if ((conn.inputDone || framingLost) && inFlight === 0) conn.socket.end();
  };
  /**
   * Counts `answer` in flight (held, the socket also stops dispatching the rest of the chunk
   * already read, so no more than maxInFlight ever run) and writes what it settles to. A rejection
   * (a bug: the router answers failures itself) is answered UNAVAILABLE, not left unhandled, which
   * would end the process.
   */
  const track = (requestId: number, answer: Promise<Uint8Array>): void => {
    if (++inFlight >= maxInFlight) conn.hold('inFlight');
    void answer
      .catch((e: unknown) => encodeResponse(requestId, { kind: 'error', error: { code: 'UNAVAILABLE', message: `request failed: ${e instanceof Error ? e.message : String(e)}` } }))
      .then((frame) => {
        conn.write(frame);
        if (--inFlight < maxInFlight / 2) conn.release('inFlight');
        closeIfDone();
      });
  };
  conn.onInputDone = closeIfDone;
  conn.onFramingError = (e) => {
    // The requests before the bad prefix still get their answers (a write among them may have
    // applied: closing at once left its client not knowing), as the RESP door answers the commands
    // before a protocol error (found by fuzzing, 2026-12-07).
    if (framingLost) return; // the decoder throws again at every later dispatch: answer once
    framingLost = true;
    reply(0, { kind: 'error', error: { code: 'BAD_REQUEST', message: `${e.message}; closing the connection` } });
    closeIfDone();
  };
  /** Decodes (BAD_REQUEST on failure) and runs one request, with back-pressure on the connection. */
  const serve = (f: Frame, decode: () => { req: Request; raw: RawRequest }): void => {
    let decoded;
    try {
      decoded = decode();
    } catch (e) {
      if (!(e instanceof BadRequestError)) throw e;
      reply(f.requestId, { kind: 'error', error: { code: e.code, message: e.message } });
      return;
    }
    const { req, raw } = decoded;
    const started = performance.now();
    track(
      f.requestId,
      router.execute(req, raw).then((res) => {
        opts.observe?.(req.op, performance.now() - started, res.kind !== 'error');
        return encodeResponse(f.requestId, res);
      }),
    );
  };

  conn.onFrame = (f: Frame) => {
    if (f.type === FrameType.Forward) {
      serve(f, () => {
        const fwd = decodeForward(f.body);
        return { req: decodeRequest(fwd.type, fwd.body, CLIENT_LIMITS), raw: { type: fwd.type, body: fwd.body, hops: fwd.hops } };
      });
      return;
    }
    if (frameClass(f.type) !== 'client') {
      reply(f.requestId, { kind: 'error', error: { code: 'BAD_REQUEST', message: `frame type 0x${f.type.toString(16)} is not a client request` } });
      return;
    }
    const special = opts.special?.(f);
    if (special) return track(f.requestId, special);
    serve(f, () => ({ req: decodeRequest(f.type, f.body, CLIENT_LIMITS), raw: { type: f.type, body: f.body, hops: 0 } }));
  };
}
