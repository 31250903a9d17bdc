// Listening on a door's host:port. The manifests listen on the IPv6 wildcard `[::]`: on Linux one
// such socket is dual-stack (IPV6_V6ONLY off, Node's and uWebSockets' default), so it takes IPv4
// and IPv6 connections alike, on IPv4-only, IPv6-only and dual-stack clusters. A kernel without
// IPv6 at all (booted with ipv6.disable=1) refuses the socket: then the IPv4 wildcard is taken.
import type net from 'node:net';
import { joinHostPort } from './address.ts';

export const IPV6_ANY = '::';
export const IPV4_ANY = '0.0.0.0';

/** Listens `server` on host:port (host without brackets); resolves with the host it listens on. */
export async function listenTcp(server: net.Server, host: string, port: number): Promise<string> {
  try {
    await listenOnce(server, host, port);
    return host;
  } catch (e) {
    if (host !== IPV6_ANY || (e as NodeJS.ErrnoException).code !== 'EAFNOSUPPORT') throw e;
    await listenOnce(server, IPV4_ANY, port);
    return IPV4_ANY;
  }
}

/**
 * Listens `server` on a door's host:port (an IPv6 host bracketed); resolves with the address it is
 * bound to: the host after any fallback and the port taken (what status and INFO report: a door on
 * `[::]` that fell back listens on 0.0.0.0, and saying `[::]` would claim IPv6 clients reach it).
 * `onError` hears what the listening server reports once it listens.
 */
export async function listenAddress(server: net.Server, address: string, onError: (e: Error) => void): Promise<string> {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(address.slice(i + 1));
  const bound = await listenTcp(server, host, port);
  // A listening server's 'error' is a connection it failed to accept (ENOMEM, ENOBUFS; libuv
  // absorbs EMFILE itself while it can): it listens on, and unheard the error ends the process.
  server.on('error', onError);
  return joinHostPort(bound, (server.address() as net.AddressInfo).port);
}

/**
 * listenTcp's rule for a listener that reports no reason when it fails (uWebSockets.js): `attempt`
 * on `host`, and on the IPv6 wildcard that failed, once more on the IPv4 one. Resolves with what
 * the attempt gave and the host it is bound to, or undefined when no attempt succeeded.
 */
export async function listenEither<T>(host: string, attempt: (host: string) => Promise<T | false>): Promise<{ handle: T; host: string } | undefined> {
  const first = await attempt(host);
  if (first !== false) return { handle: first, host };
  if (host !== IPV6_ANY) return undefined;
  const second = await attempt(IPV4_ANY);
  return second === false ? undefined : { handle: second, host: IPV4_ANY };
}

function listenOnce(server: net.Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    // Closed before it is bound (its owner closed meanwhile): Node drops the pending listen without
    // an error or a 'listening', so without this the promise never settled and the start hung.
    const closed = (): void => fail(new Error(`closed before listening on ${host}:${port}`));
    const fail = (e: Error): void => {
      server.off('error', fail);
      server.off('close', closed);
      reject(e);
    };
    server.once('error', fail);
    server.once('close', closed);
    server.listen({ host, port }, () => {
      server.off('error', fail);
      server.off('close', closed);
      resolve();
    });
  });
}
