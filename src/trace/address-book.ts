// Who is at the end of a captured connection: (address, port) → replica id and group. Pure.
//
// Static knowledge comes from the cluster's address book (every replica's native door). The
// dialing side of a replica link uses an ephemeral port the book cannot know, so the book also
// learns: a HELLO frame names its sender (id and group), and every Raft message names its sender
// and receiver. What is learned holds for one connection only: Linux hands the same ephemeral port
// to connections to different destinations, so on one host two replicas' links can start at the
// same address and port at once. Learned entries are bounded and overwritten by newer evidence.
import type { Endpoint } from './source.ts';

export interface ReplicaAddress {
  id: number;
  group: number;
  /** host:port of the replica's native door (replica links and clients). */
  address: string;
}

export interface AddressBookOptions {
  /**
   * This host's own addresses on the traced interface (not loopback): a segment from one of them
   * was sent by the local replica. Used when every replica listens on the same port (Kubernetes).
   */
  localAddrs?: readonly string[];
  /** The local replica's id, for localAddrs. */
  self?: number;
  /** Learned endpoints kept (oldest forgotten first). */
  maxLearned?: number;
}

const WILDCARDS = new Set(['0.0.0.0', '::', '']);
const LOOPBACK_NAMES = new Map([['localhost', ['127.0.0.1', '::1']]]);

/** IPv4-mapped IPv6 (::ffff:a.b.c.d) and brackets removed, lower case. */
export function normalizeAddr(addr: string): string {
  const a = addr.replace(/^\[|\]$/g, '').toLowerCase();
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

export function splitHostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: normalizeAddr(address.slice(0, Math.max(i, 0))), port: Number(address.slice(i + 1)) };
}

function isIpLiteral(host: string): boolean {
  return /^\d+\.\d+\.\d+\.\d+$/.test(host) || host.includes(':');
}

/** Wire addresses come normalised from the capture; the book's own are normalised at construction. */
const key = (addr: string, port: number): string => `${addr}|${port}`;
const learnedKey = (conn: string, at: string): string => `${conn}>${at}`;

export class AddressBook {
  private readonly exact = new Map<string, number>();
  /** Ports whose replica is known only by port (host is a name or a wildcard); -1: ambiguous. */
  private readonly byPort = new Map<number, number>();
  private readonly groups = new Map<number, number>();
  private readonly learned = new Map<string, number>();
  private readonly local: Set<string>;
  private readonly maxLearned: number;

  constructor(
    replicas: readonly ReplicaAddress[],
    private readonly opts: AddressBookOptions = {},
  ) {
    this.maxLearned = opts.maxLearned ?? 8192;
    this.local = new Set((opts.localAddrs ?? []).map(normalizeAddr));
    for (const r of replicas) {
      this.groups.set(r.id, r.group);
      const { host, port } = splitHostPort(r.address);
      const hosts = LOOPBACK_NAMES.get(host) ?? (isIpLiteral(host) && !WILDCARDS.has(host) ? [host] : []);
      for (const h of hosts) this.exact.set(key(normalizeAddr(h), port), r.id);
      if (hosts.length === 0) this.byPort.set(port, this.byPort.has(port) ? -1 : r.id);
    }
  }

  /** The replica at this endpoint (of connection `conn`, for what was learned), if known. */
  idOf(ep: Endpoint, conn?: string): number | undefined {
    const k = key(ep.addr, ep.port);
    const id = this.exact.get(k) ?? (conn === undefined ? undefined : this.learned.get(learnedKey(conn, k)));
    if (id !== undefined) return id;
    const p = this.byPort.get(ep.port);
    if (p !== undefined && p > 0) return p;
    if (this.opts.self !== undefined && this.local.has(ep.addr)) return this.opts.self;
    return undefined;
  }

  groupOf(id: number | undefined): number | undefined {
    return id === undefined ? undefined : this.groups.get(id);
  }

  /**
   * Evidence from the wire: on connection `conn` (any string naming it, the same for both
   * directions), this endpoint belongs to replica `id` (of `group`, when a HELLO said).
   */
  learn(conn: string, ep: Endpoint, id: number, group?: number): void {
    if (group !== undefined && !this.groups.has(id)) this.groups.set(id, group);
    const at = key(ep.addr, ep.port);
    if (this.exact.has(at)) return;
    const k = learnedKey(conn, at);
    if (this.learned.get(k) === id) return;
    this.learned.delete(k);
    this.learned.set(k, id);
    if (this.learned.size > this.maxLearned) {
      const oldest = this.learned.keys().next().value;
      if (oldest !== undefined) this.learned.delete(oldest);
    }
  }

  /** `r<id>` for a replica, else `addr:port`. */
  label(ep: Endpoint, conn?: string): string {
    const id = this.idOf(ep, conn);
    return id !== undefined ? replicaName(id) : endpointText(ep);
  }
}

export function replicaName(id: number): string {
  return `r${id}`;
}

export function endpointText(ep: Endpoint): string {
  return ep.addr.includes(':') ? `[${ep.addr}]:${ep.port}` : `${ep.addr}:${ep.port}`;
}
