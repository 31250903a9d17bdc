// The address of a replica's native door, as replicas and clients pass it around: host:port, the
// host bracketed when it is an IPv6 literal ([::1]:7000).

/** [host, port] of `address`; throws when it is not host:port with a port in 1..65535. */
export function splitAddress(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  const port = Number(address.slice(i + 1));
  if (i <= 0 || !/^\d+$/.test(address.slice(i + 1)) || !Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`bad address "${address}" (want host:port)`);
  return [address.slice(0, i).replace(/^\[|\]$/g, ''), port];
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
