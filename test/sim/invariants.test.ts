// The checker on hand-made situations, without the Raft core: each rule must fire when broken
// and stay quiet when kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RaftNode } from '../../src/raft/node.ts';
import { EntryType, MsgType, Role, type Entry, type Message, type Ready } from '../../src/raft/types.ts';
import { Disk } from './disk.ts';
import { Checker, Violation, type Invariant, type Watched } from './invariants.ts';

type TestHost = Watched & { disk: Disk };

const conf = { voters: [1, 2, 3], learners: [] };
const entry = (index: number, term: number, text = `e${index}.${term}`): Entry => ({
  index,
  term,
  type: EntryType.Normal,
  data: new TextEncoder().encode(text),
});

/** A stand-in for a RaftNode: just the parts the checker reads. */
class FakeNode {
  role: string = Role.Follower;
  term = 1;
  commit = 0;
  applied = 0;
  log: Entry[] = [];
  get status() {
    return { role: this.role, term: this.term, commit: this.commit, applied: this.applied, firstIndex: 1, conf };
  }
  get commitIndex(): number {
    return this.commit;
  }
  get appliedIndex(): number {
    return this.applied;
  }
  get conf() {
    return conf;
  }
  entryAt(i: number): Entry | undefined {
    return this.log[i - 1];
  }
}

function cluster(): { checker: Checker; nodes: FakeNode[]; hosts: TestHost[] } {
  const nodes = [1, 2, 3].map(() => new FakeNode());
  const hosts: TestHost[] = nodes.map((n, i) => ({ id: i + 1, disk: new Disk(conf), node: n as unknown as RaftNode }));
  const checker = new Checker(() => hosts);
  for (const h of hosts) checker.started(h);
  return { checker, nodes, hosts };
}

function breaks(rule: Invariant, fn: () => void): void {
  assert.throws(fn, (e: unknown) => e instanceof Violation && e.invariant === rule);
}

const ready = (entries: Entry[]): Ready => ({
  softState: undefined,
  hardState: undefined,
  snapshotChunks: [],
  snapshot: undefined,
  compaction: undefined,
  entries,
  messages: [],
  committedEntries: [],
  readStates: [],
  failedReads: [],
});

test('election safety: two leaders in one term', () => {
  const { checker, nodes, hosts } = cluster();
  for (const i of [0, 1]) Object.assign(nodes[i] as FakeNode, { role: Role.Leader, term: 2 });
  checker.afterEvent(hosts[0] as TestHost);
  breaks('election-safety', () => checker.afterEvent(hosts[1] as TestHost));
});

test('vote-once: a second vote in the same term, or a term going back', () => {
  const { checker, hosts } = cluster();
  const h = hosts[0] as TestHost;
  checker.persisted(h, { term: 2, vote: 0, commit: 0 }, { term: 2, vote: 3, commit: 0 });
  breaks('vote-once', () => checker.persisted(h, { term: 2, vote: 3, commit: 0 }, { term: 2, vote: 2, commit: 0 }));
  breaks('vote-once', () => checker.persisted(h, { term: 3, vote: 0, commit: 0 }, { term: 2, vote: 0, commit: 0 }));
});

test('persist before send: votes and acknowledgements must be durable', () => {
  const { checker, hosts } = cluster();
  const h = hosts[0] as TestHost;
  h.disk.hard = { term: 2, vote: 0, commit: 0 };
  const grant: Message = { type: MsgType.VoteResp, from: 1, to: 3, term: 2, reject: false };
  breaks('persist-before-send', () => checker.sending(h, grant));
  h.disk.hard = { term: 2, vote: 3, commit: 0 };
  checker.sending(h, grant);
  h.disk.hard = { term: 4, vote: 0, commit: 0 };
  checker.sending(h, grant); // a later term is durable: it can never vote again in term 2
  const ack: Message = { type: MsgType.AppendResp, from: 1, to: 2, term: 4, index: 1, reject: false, hintIndex: 0, hintTerm: 0 };
  breaks('persist-before-send', () => checker.sending(h, ack));
  h.disk.append([entry(1, 4)]);
  checker.sending(h, ack);
});

test('durable commit: a leader needs a majority of durable copies, itself included', () => {
  const { checker, nodes, hosts } = cluster();
  const leader = nodes[0] as FakeNode;
  Object.assign(leader, { role: Role.Leader, term: 1, log: [entry(1, 1)], commit: 1 });
  (hosts[1] as TestHost).disk.append([entry(1, 1)]); // one follower has it, the leader has not written it
  breaks('durable-commit', () => checker.afterEvent(hosts[0] as TestHost));
  const ok = cluster();
  Object.assign(ok.nodes[0] as FakeNode, { role: Role.Leader, term: 1, log: [entry(1, 1)], commit: 1 });
  for (const i of [0, 1]) (ok.hosts[i] as TestHost).disk.append([entry(1, 1)]);
  ok.checker.afterEvent(ok.hosts[0] as TestHost);
});

test('commit-current-term: no commit of an older-term entry by counting', () => {
  const { checker, nodes, hosts } = cluster();
  Object.assign(nodes[0] as FakeNode, { role: Role.Leader, term: 3, log: [entry(1, 2)], commit: 1 });
  for (const h of hosts) h.disk.append([entry(1, 2)]);
  breaks('commit-current-term', () => checker.afterEvent(hosts[0] as TestHost));
});

test('leader completeness: a later leader lacks a committed entry', () => {
  const { checker, nodes, hosts } = cluster();
  Object.assign(nodes[0] as FakeNode, { role: Role.Leader, term: 1, log: [entry(1, 1)], commit: 1 });
  for (const i of [0, 1]) (hosts[i] as TestHost).disk.append([entry(1, 1)]);
  checker.afterEvent(hosts[0] as TestHost);
  Object.assign(nodes[0] as FakeNode, { role: Role.Follower, term: 2 });
  checker.afterEvent(hosts[0] as TestHost);
  Object.assign(nodes[2] as FakeNode, { role: Role.Leader, term: 3, log: [entry(1, 2)] });
  breaks('leader-completeness', () => checker.afterEvent(hosts[2] as TestHost));
});

test('log matching: one (index, term), two contents', () => {
  const { checker, nodes, hosts } = cluster();
  (nodes[0] as FakeNode).log = [entry(1, 1, 'a')];
  checker.readyTaken(hosts[0] as TestHost, ready([entry(1, 1, 'a')]));
  (nodes[1] as FakeNode).log = [entry(1, 1, 'b')];
  breaks('log-matching', () => checker.readyTaken(hosts[1] as TestHost, ready([entry(1, 1, 'b')])));
});

test('state-machine safety: two replicas apply different entries at one index; applies go in order', () => {
  const { checker, hosts } = cluster();
  checker.applying(hosts[0] as TestHost, entry(1, 1, 'a'), 0);
  breaks('state-machine-safety', () => checker.applying(hosts[1] as TestHost, entry(1, 1, 'b'), 0));
  breaks('applied-monotonic', () => checker.applying(hosts[2] as TestHost, entry(2, 1), 0));
});

test('durable answer: a write is answered only once committed (on a durable majority)', () => {
  const { checker, nodes, hosts } = cluster();
  const leader = nodes[0] as FakeNode;
  Object.assign(leader, { role: Role.Leader, term: 1, log: [entry(1, 1)] });
  (hosts[0] as TestHost).disk.append([entry(1, 1)]);
  checker.afterEvent(hosts[0] as TestHost);
  breaks('durable-answer', () => checker.answered(hosts[0] as TestHost, 1, 1)); // durable here only, not committed
  (hosts[2] as TestHost).disk.append([entry(1, 1)]);
  leader.commit = 1;
  checker.afterEvent(hosts[0] as TestHost);
  checker.answered(hosts[0] as TestHost, 1, 1);
  breaks('durable-answer', () => checker.answered(hosts[0] as TestHost, 1, 2)); // another term's entry there
});
