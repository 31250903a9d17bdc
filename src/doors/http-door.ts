// The HTTP door on uWebSockets.js (or, where its addon does not load, node:http + ws with the same
// routes: node-http.ts): probes, metrics, status, the key-value routes, and the native protocol
// over WebSocket at /v1/ws, all on one listening port.
import type { us_listen_socket } from 'uWebSockets.js';
import { IPV4_ANY, IPV6_ANY } from '../address/listen.ts';
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

  const i = opts.listen.lastIndexOf(':');
  const host = opts.listen.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(opts.listen.slice(i + 1));
  const tryListen = (h: string): Promise<us_listen_socket | false> => new Promise((resolve) => app.listen(h, port, (s) => resolve(s || false)));
  // uWebSockets gives no reason: on the IPv6 wildcard, try the IPv4 one (a kernel without IPv6, address/listen.ts).
  const socket = (await tryListen(host)) || (host === IPV6_ANY && (await tryListen(IPV4_ANY)));
  if (!socket) throw new Error(`cannot listen on ${opts.listen} (HTTP door): address in use or not available`);
  const address = `${opts.listen.slice(0, i)}:${uws.us_socket_local_port(socket as never)}`;
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
