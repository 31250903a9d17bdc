// The WebSocket door, on the HTTP door's uWS app at /v1/ws: binary messages carry native protocol
// frames (docs/protocol.md), so a browser speaks the same protocol as the TCP clients. This file
// adapts a uWS socket to NativeStream, which does the protocol and the back-pressure.
import type { TemplatedApp, WebSocket } from 'uWebSockets.js';
import { DEFAULT_MAX_FRAME_BYTES } from '../wire/index.ts';
import type { DoorContext } from './door-context.ts';
import { NativeStream, WS_CLOSE } from './native-stream.ts';
import type { Uws } from './http-util.ts';

export const WS_PATH = '/v1/ws';

interface Conn {
  stream?: NativeStream;
  closed?: boolean;
}

export interface WsOptions {
  /**
   * Largest message, whole or fragmented: a larger one ends the connection without being buffered
   * (uWS drops it without a close frame; the node fallback sends 1009).
   */
  maxPayloadBytes?: number;
  /** Past this much unsent output uWS drops the connection (the stream stops reading far earlier). */
  maxBackpressureBytes?: number;
  softBufferedBytes?: number;
  idleTimeoutSeconds?: number;
  /** Default PARTIAL_FRAME_TIMEOUT_MS (native-stream.ts). */
  partialFrameTimeoutMs?: number;
}

export function mountWebSocket(uws: Uws, app: TemplatedApp, ctx: DoorContext, opts: WsOptions = {}): void {
  app.ws<Conn>(WS_PATH, {
    compression: uws.DISABLED,
    maxPayloadLength: opts.maxPayloadBytes ?? DEFAULT_MAX_FRAME_BYTES,
    maxBackpressure: opts.maxBackpressureBytes ?? 64 << 20,
    closeOnBackpressureLimit: 1,
    idleTimeout: opts.idleTimeoutSeconds ?? 120,
    sendPingsAutomatically: true,
    open: (ws: WebSocket<Conn>) => {
      const conn = ws.getUserData();
      ctx.connectionOpened('ws');
      conn.stream = new NativeStream(
        ctx.executor,
        {
          // Answers come back from promises, outside uWS's callbacks: cork them into one write.
          send: (bytes) => {
            if (!conn.closed) ws.cork(() => ws.send(bytes, true));
          },
          bufferedAmount: () => (conn.closed ? 0 : ws.getBufferedAmount()),
          close: (code, reason) => {
            if (!conn.closed) ws.end(code, reason);
          },
        },
        {
          softBufferedBytes: opts.softBufferedBytes,
          partialFrameTimeoutMs: opts.partialFrameTimeoutMs,
          observe: (op, seconds, outcome) => ctx.observe('ws', op, seconds, outcome),
        },
      );
    },
    message: (ws: WebSocket<Conn>, message: ArrayBuffer, isBinary: boolean) => {
      const conn = ws.getUserData();
      if (!isBinary) {
        ws.end(WS_CLOSE.unsupportedData, 'binary messages only: native protocol frames');
        return;
      }
      // The message buffer dies with this callback. Tiny messages are copied again into a block by the
      // decoder (1-byte messages must not cost an object each); the bound counts what stays queued.
      conn.stream?.push(new Uint8Array(message.slice(0)));
    },
    drain: (ws: WebSocket<Conn>) => ws.getUserData().stream?.drained(),
    close: (ws: WebSocket<Conn>) => {
      const conn = ws.getUserData();
      conn.closed = true;
      conn.stream?.close();
      ctx.connectionClosed('ws');
    },
  });
}
