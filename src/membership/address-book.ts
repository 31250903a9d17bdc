// Where each replica of this group listens. Sources, a later one winning for an id: the --replicas
// flag, the placement configuration's entry for this group, and the address in an add request
// (on the leader that carries it out). Below them all, on Kubernetes, the address a member's id
// stands for (its pod's stable DNS name, pod-identity.ts): a restarted replica that lists only
// itself then reaches the members its log names even while the placement group is down. An entry is never forgotten: on removal the placement
// configuration drops a replica before the Raft configuration does, and which replicas get a link
// is decided by the Raft configuration (member-links.ts), not by this book.
import type { PeerAddress } from '../transport/peers.ts';

export class AddressBook {
  private readonly byId = new Map<number, string>();
  /** Bumped on every change, so a reader can tell cheaply whether to look again. */
  version = 0;

  constructor(
    initial: PeerAddress[] = [],
    private readonly derive: (id: number) => string | undefined = () => undefined,
  ) {
    for (const p of initial) this.set(p.id, p.address);
  }

  set(id: number, address: string): void {
    if (this.byId.get(id) === address) return;
    this.byId.set(id, address);
    this.version++;
  }

  setAll(list: readonly PeerAddress[]): void {
    for (const p of list) this.set(p.id, p.address);
  }

  /** The address a source gave for `id` (not one derived from its id), if any. */
  known(id: number): string | undefined {
    return this.byId.get(id);
  }

  /** host:port, or '' when unknown (the form NOT_LEADER hints use). */
  addressOf(id: number): string {
    return this.byId.get(id) ?? this.derive(id) ?? '';
  }

  /** Every known address, and the derived one of each of `members` not known otherwise. */
  entries(members: readonly number[] = []): PeerAddress[] {
    const out = new Map(this.byId);
    for (const id of members) {
      const derived = out.has(id) ? undefined : this.derive(id);
      if (derived) out.set(id, derived);
    }
    return [...out].map(([id, address]) => ({ id, address })).sort((a, b) => a.id - b.id);
  }
}
