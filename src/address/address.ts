// The address of a replica's native door, as replicas and clients pass it around: host:port, the
// host bracketed when it is an IPv6 literal ([::1]:7000).

/** [host, port] of `address`; throws when it is not host:port with a port in 1..65535. */
export function splitAddress(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  const port = Number(address.slice(i + 1));
  if (i <= 0 || !/^\d+$/.test(address.slice(i + 1)) || !Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`bad address "${address}" (want host:port)`);
  const problem = hostProblem(address.slice(0, i));
  if (problem) throw new Error(`bad address "${address}": ${problem}`);
  return [address.slice(0, i).replace(/^\[|\]$/g, ''), port];
}

/**
 * Why the host part of host:port is malformed: an IPv6 literal without its brackets (`::1:7000`
 * reads as the address ::1:7000, no port) or unbalanced brackets; undefined when it is fine.
 */
export function hostProblem(host: string): string | undefined {
  const bracketed = host.startsWith('[') && host.endsWith(']');
  if (bracketed ? /[[\]]/.test(host.slice(1, -1)) || host.length === 2 : /[[\]]/.test(host)) return `unbalanced brackets in host "${host}"`;
  if (!bracketed && host.includes(':')) return `an IPv6 host goes in brackets: [${host}]:port`;
  return undefined;
}

/** host:port, an IPv6 literal host bracketed: the inverse of splitAddress. */
export function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Why `address` is not a usable host:port, or undefined when it is. */
export function addressProblem(address: string): string | undefined {
  try {
    splitAddress(address);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}
