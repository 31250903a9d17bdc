// The cluster scenario the end-to-end trace tests run under every source, and what its trace must
// show: writes (one forwarded by a follower), a kill -9 of the leader (PreVote, RequestVote), more
// writes, a graceful stop of the next leader (TimeoutNow, RequestVote with transfer), more writes.
import assert from 'node:assert/strict';
import { sleep, type TestCluster } from '../../server/cluster.ts';
import type { StatusInfo } from '../../../src/wire/index.ts';

/** A parsed `--format json` message line. */
export interface MsgLine {
  kind: 'msg';
  group: number | null;
  from: number | null;
  to: number | null;
  msg: string;
  requestId?: number;
  bytes: number;
  partial: boolean;
  [field: string]: unknown;
}

export interface SummaryLine {
  kind: 'summary';
  final: boolean;
  label: string;
  source: string;
  frames: number;
  lines: number;
  undecodable: number;
  drops: number;
  [field: string]: unknown;
}

/** Lines collected from a child's stream, split on newlines. */
export function collectLines(stream: NodeJS.ReadableStream, into: string[]): void {
  let rest = '';
  stream.on('data', (b: Buffer) => {
    const parts = (rest + b.toString()).split('\n');
    rest = parts.pop() ?? '';
    into.push(...parts);
  });
}

export function parseJsonLines(text: readonly string[]): { msgs: MsgLine[]; summaries: SummaryLine[] } {
  const msgs: MsgLine[] = [];
  const summaries: SummaryLine[] = [];
  for (const t of text) {
    if (t.trim() === '') continue;
    const o = JSON.parse(t) as MsgLine | SummaryLine;
    if (o.kind === 'msg') msgs.push(o);
    else summaries.push(o);
  }
  return { msgs, summaries };
}

/** Resolves once `done()` holds (re-checked every 50 ms); fails with `what` after a generous bound. */
export async function waitFor(what: string, done: () => boolean, boundMs = 30_000): Promise<void> {
  const until = Date.now() + boundMs;
  while (!done()) {
    if (Date.now() > until) throw new Error(`gave up waiting for ${what}`);
    await sleep(50);
  }
}

export interface ScenarioResult {
  /** Leader at the start, after its kill -9, and at the end (after the graceful stop of the second). */
  first: StatusInfo;
  second: StatusInfo;
  third: StatusInfo;
  /** The replica that forwarded a write to the first leader. */
  forwarder: number;
  /** Commit index at the end (of the leader at the end: the third, unless leadership moved again). */
  commit: number;
}

async function puts(c: TestCluster, prefix: string, n: number, endpoints?: string[]): Promise<void> {
  const client = c.client(endpoints ? { endpoints } : {});
  try {
    for (let i = 0; i < n; i++) await client.put(`${prefix}-${i}`, `value-${prefix}-${i}`);
  } finally {
    client.close();
  }
}

/**
 * Runs the scenario. `lines()` gives every message line seen so far; the scenario waits for the
 * first leader's appends to be traced before killing it, so its trace cannot be cut short.
 */
export async function runScenario(c: TestCluster, lines: () => MsgLine[], summaries: () => SummaryLine[] = () => []): Promise<ScenarioResult> {
  const first = await c.waitForLeader();
  await puts(c, 'a', 5);
  const forwarder = c.ids.find((id) => id !== first.replicaId)!;
  await puts(c, 'fwd', 1, [c.address(forwarder)]);
  await waitFor('the first leader’s appends in the trace', () =>
    lines().some((l) => l.msg === 'AppendEntries' && l.from === first.replicaId && (l.entries as number) > 0),
  );
  const isFwd = (l: MsgLine): boolean => l.msg === 'Forward(Put)' && l.from === forwarder && l.key === '"fwd-0"';
  await waitFor('the forwarded write in the trace', () => lines().some(isFwd));
  const fwdId = lines().find(isFwd)?.requestId;
  // Request ids are per link: the answer is the one to the forwarder.
  await waitFor('the answer to the forward in the trace', () =>
    lines().some((l) => l.msg === 'Ok' && l.from === first.replicaId && l.to === forwarder && l.requestId === fwdId),
  );

  await c.kill(first.replicaId, 'SIGKILL');
  const second = await c.waitForLeader(15_000, first.replicaId);
  await puts(c, 'b', 5);
  await c.restart(first.replicaId);
  // Let the restarted replica rejoin (links in both directions back) before the hand-over.
  const until = Date.now() + 30_000;
  for (;;) {
    const [s, l] = await Promise.all([c.status(first.replicaId), c.status(second.replicaId)]);
    if (s && l && s.leaderId === second.replicaId && s.term === l.term && s.commitIndex >= l.commitIndex) break;
    if (Date.now() > until) throw new Error('the restarted replica did not rejoin');
    await sleep(50);
  }

  await c.kill(second.replicaId, 'SIGTERM'); // a leader hands over first: TimeoutNow
  let third = await c.waitForLeader(15_000, second.replicaId);
  await puts(c, 'c', 3);
  // A captured segment keeps only its first snap-length bytes: an append (or its acknowledgement)
  // sharing a segment with earlier frames can be cut away (counted as unseen). One more write then
  // shows the log's end.
  let commit = 0;
  const reachesCommit = (): boolean => {
    const seen = lines();
    return (
      seen.some((l) => l.msg === 'AppendEntries' && l.from === third.replicaId && l.term === third.term && (l.lastIndex as number) >= commit) &&
      seen.some((l) => l.msg === 'AppendEntriesResp' && l.to === third.replicaId && l.term === third.term && (l.index as number) >= commit && l.reject === false)
    );
  };
  for (let round = 0; ; round++) {
    // On a loaded machine leadership may move once more after the hand-over (check-quorum): the
    // log's end is then traced from whoever leads now.
    third = await c.waitForLeader(15_000, second.replicaId);
    commit = (await c.waitForStatus(third.replicaId)).commitIndex;
    try {
      await waitFor('the last writes in the trace', reachesCommit, 5_000);
      break;
    } catch (e) {
      if (round === 5) {
        const seen = lines();
        const appends = seen.filter((l) => l.msg === 'AppendEntries' && l.from === third.replicaId && l.term === third.term);
        const acks = seen.filter((l) => l.msg === 'AppendEntriesResp' && l.to === third.replicaId && l.term === third.term);
        const maxOf = (xs: MsgLine[], f: string): number => Math.max(0, ...xs.map((l) => (l[f] as number | undefined) ?? 0));
        throw new Error(
          `${(e as Error).message}: commit ${commit}; from leader r${third.replicaId} (term ${third.term}) ${appends.length} appends up to ${maxOf(appends, 'lastIndex')}, ${acks.length} acks up to ${maxOf(acks, 'index')}; ${seen.length} lines in all; summaries:\n${summaries().slice(-6).map((x) => JSON.stringify(x)).join('\n')}`,
        );
      }
      await puts(c, `c${round}`, 1);
    }
  }
  return { first, second, third, forwarder, commit };
}

/** The first line of message type `msg` that satisfies `pred`; on failure, the context and every line of that type. */
function find(lines: MsgLine[], msg: string, what: string, context: string, pred: (l: MsgLine) => boolean): MsgLine {
  const l = lines.find((x) => x.msg === msg && pred(x));
  const same = lines.filter((x) => x.msg === msg);
  assert.ok(l, `no ${what} (${msg}) line; scenario ${context}; the ${same.length} ${msg} lines:\n${same.map((x) => JSON.stringify(x)).join('\n')}`);
  return l;
}

/** What the trace of the scenario must contain, whichever source produced it. */
export function checkScenarioLines(lines: MsgLine[], r: ScenarioResult, ids: readonly number[], opts: { allowPartial: boolean }): void {
  assert.ok(lines.length > 0, 'no lines at all');
  for (const l of lines) {
    assert.equal(l.group, 0, `group of ${JSON.stringify(l)}`);
    assert.ok(ids.includes(l.from as number) && ids.includes(l.to as number) && l.from !== l.to, `names of ${JSON.stringify(l)}`);
    // Captured segments are cut at the snap length: a frame straddling the cut is partial (a
    // backlog written at once after a reconnect can exceed it). The tap sees whole frames.
    if (!opts.allowPartial) assert.equal(l.partial, false, `partial: ${JSON.stringify(l)}`);
  }
  const { first, second, third, forwarder } = r;
  const survivor = ids.find((id) => id !== first.replicaId && id !== second.replicaId)!;
  const ctx = JSON.stringify({ first: [first.replicaId, first.term], second: [second.replicaId, second.term], third: [third.replicaId, third.term], forwarder, survivor, commit: r.commit });
  const has = (msg: string, what: string, pred: (l: MsgLine) => boolean): MsgLine => find(lines, msg, what, ctx, pred);

  // The first leader replicated the first writes, including the forwarded one, and answered it.
  has('AppendEntries', 'entries from the first leader', (l) => l.from === first.replicaId && l.term === first.term && (l.entries as number) > 0);
  const fwd = has('Forward(Put)', 'the forwarded write', (l) => l.from === forwarder && l.to === first.replicaId && l.key === '"fwd-0"');
  assert.equal(fwd.hops, 1);
  assert.ok((fwd.requestId as number) > 0);
  has('Ok', 'answer to the forward', (l) => l.from === first.replicaId && l.to === forwarder && l.requestId === fwd.requestId);

  // kill -9: the second leader won a pre-vote and a vote in its term, from the survivor.
  has('PreVote', 'the second leader’s pre-vote', (l) => l.from === second.replicaId && l.to === survivor && l.term === second.term);
  has('PreVoteResp', 'the survivor’s pre-vote', (l) => l.from === survivor && l.to === second.replicaId && l.term === second.term && l.reject === false);
  has('RequestVote', 'the second leader’s vote request', (l) => l.from === second.replicaId && l.to === survivor && l.term === second.term && l.transfer === false);
  has('RequestVoteResp', 'the survivor’s vote', (l) => l.from === survivor && l.to === second.replicaId && l.term === second.term && l.reject === false);
  has('AppendEntries', 'entries from the second leader', (l) => l.from === second.replicaId && l.term === second.term && (l.entries as number) > 0);

  // Graceful stop: TimeoutNow to the most caught-up replica, whose vote request says transfer.
  const handOver = has('TimeoutNow', 'the hand-over', (l) => l.from === second.replicaId && l.term === second.term);
  has('RequestVote', 'the transfer vote request', (l) => l.from === handOver.to && l.term === second.term + 1 && l.transfer === true);

  // Indexes: every append's range follows from prevIndex and the count; followers acknowledge the end.
  const appends = lines.filter((l) => l.msg === 'AppendEntries');
  for (const a of appends) {
    const n = a.entries as number;
    if (n === 0) continue;
    assert.equal(a.firstIndex, (a.prevIndex as number) + 1, JSON.stringify(a));
    assert.equal(a.lastIndex, (a.prevIndex as number) + n, JSON.stringify(a));
  }
  const last = Math.max(...appends.filter((a) => a.from === third.replicaId && a.term === third.term).map((a) => (a.lastIndex as number | undefined) ?? 0));
  assert.ok(last >= r.commit, `third leader's appends reach index ${last} < commit ${r.commit}`);
  has('AppendEntriesResp', 'an acknowledgement of the last index', (l) => l.to === third.replicaId && l.term === third.term && (l.index as number) >= r.commit && l.reject === false);
}
