// Keeps the replica links in step with the Raft configuration in force and the address book.
// sync() is called before every send: it costs two comparisons unless something changed, and the
// configuration in force changes exactly when a configuration entry is appended (or rolled back),
// which is when the leader starts (or stops) sending to that member.
import type { ConfState } from '../raft/types.ts';
import type { Peers } from '../transport/peers.ts';
import type { AddressBook } from './address-book.ts';
import { wantedPeers } from './peer-set.ts';
import type { Logger } from '../log/logger.ts';

export interface MemberLinksOptions {
  self: number;
  conf: () => ConfState;
  book: AddressBook;
  peers: Peers;
  log?: Logger;
}

export class MemberLinks {
  private conf: ConfState | undefined;
  private version = -1;

  constructor(private readonly o: MemberLinksOptions) {}

  sync(): void {
    const conf = this.o.conf();
    if (conf === this.conf && this.o.book.version === this.version) return;
    this.conf = conf;
    this.version = this.o.book.version;
    const before = this.o.peers.ids().join(',');
    const { peers, missing } = wantedPeers(this.o.self, conf, this.o.book.entries([...conf.voters, ...conf.learners]));
    this.o.peers.setPeers(peers);
    const after = this.o.peers.ids().join(',');
    if (after !== before) this.o.log?.info('replica links follow the configuration', { links: this.o.peers.ids(), voters: conf.voters, learners: conf.learners });
    if (missing.length > 0) this.o.log?.warn('no address yet for members', { members: missing });
  }
}
