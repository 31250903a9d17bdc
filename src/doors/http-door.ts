// The HTTP door on uWebSockets.js (or, where its addon does not load, node:http + ws with the same
// routes: node-http.ts): probes, metrics, status, the key-value routes, and the native protocol
// over WebSocket at /v1/ws, all on one listening port.
import type { us_listen_socket } from 'uWebSockets.js';
import { joinHostPort } from '../address/address.ts';
import { listenEither } from '../address/listen.ts';
import type { Door, DoorContext } from './door-context.ts';
import { KvOps } from './kv-ops.ts';
import { httpImpl, type HttpImpl } from './http-util.ts';
import { mountKvRoutes, mountNotFound, mountOpsRoutes } from './http-routes.ts';
import { mountWebSocket, WS_PATH, type WsOptions } from './ws-door.ts';

export interface HttpDoorOptions {
  listen: string;
  ws?: WsOptions;
}

/** Said once per process: which implementation a replica's HTTP door runs on when it is not uWS. */
let warned = false;

export async function startHttpDoor(ctx: DoorContext, opts: HttpDoorOptions): Promise<Door & { wsUrl: string; impl: HttpImpl }> {
  const { impl, uws, fallback } = await httpImpl();
  if (fallback !== undefined && !warned) {
    warned = true;
    ctx.log.warn('HTTP/WebSocket door on node:http + ws instead of uWebSockets.js', { reason: fallback });
  }
  const app = uws.App();
  mountOpsRoutes(app, ctx);
  mountKvRoutes(app, ctx, new KvOps(ctx.executor, ctx.limits));
  mountWebSocket(uws, app, ctx, opts.ws);
  mountNotFound(app, ctx);

  const { address } = await listenApp(app, opts.listen, (s) => uws.us_socket_local_port(s as never));
  return {
    name: 'http',
    impl,
    address,
    wsUrl: `ws://${address}${WS_PATH}`,
    close: async () => {
      // Closes the listening socket and every connection, so the process can exit.
      (app as unknown as { close(): void }).close();
    },
  };
}

/** What listenApp needs of a uWebSockets app (or the node:http stand-in). */
export interface ListeningApp {
  listen(host: string, port: number, cb: (socket: us_listen_socket | false) => void): unknown;
}

/**
 * Listens `app` on `listen` (host:port, an IPv6 host bracketed), the IPv6 wildcard falling back to
 * the IPv4 one (address/listen.ts); the address is the one bound, host and port, not the one asked.
 */
export async function listenApp(app: ListeningApp, listen: string, localPort: (s: us_listen_socket) => number): Promise<{ socket: us_listen_socket; address: string }> {
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(listen.slice(i + 1));
  // uWebSockets gives no reason for a failed listen: listenEither retries the wildcard on IPv4.
  const bound = await listenEither(host, (h) => new Promise<us_listen_socket | false>((resolve) => void app.listen(h, port, (s) => resolve(s || false))));
  if (!bound) throw new Error(`cannot listen on ${listen} (HTTP door): address in use or not available`);
  return { socket: bound.handle, address: joinHostPort(bound.host, localPort(bound.handle)) };
}
