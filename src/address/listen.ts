// Listening on a door's host:port. The manifests listen on the IPv6 wildcard `[::]`: on Linux one
// such socket is dual-stack (IPV6_V6ONLY off, Node's and uWebSockets' default), so it takes IPv4
// and IPv6 connections alike, on IPv4-only, IPv6-only and dual-stack clusters. A kernel without
// IPv6 at all (booted with ipv6.disable=1) refuses the socket: then the IPv4 wildcard is taken.
import type net from 'node:net';

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

function listenOnce(server: net.Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
