// One-line renderings of messages and Readys for the readable trace.
import { MsgType, type Message, type Ready } from '../../src/raft/types.ts';
import { msgName } from './invariants.ts';

export function describeMsg(m: Message): string {
  const head = `${msgName(m)} n${m.from}→n${m.to} t${m.term}`;
  switch (m.type) {
    case MsgType.PreVote:
    case MsgType.Vote:
      return `${head} last=${m.lastIndex}/t${m.lastTerm}${m.type === MsgType.Vote && m.transfer ? ' transfer' : ''}`;
    case MsgType.PreVoteResp:
    case MsgType.VoteResp:
      return `${head} ${m.reject ? 'reject' : 'grant'}`;
    case MsgType.Append: {
      const e = m.entries;
      const span = e.length === 0 ? 'no entries' : `${e[0]?.index}..${e[e.length - 1]?.index}`;
      return `${head} prev=${m.prevIndex}/t${m.prevTerm} ${span} commit=${m.commit}`;
    }
    case MsgType.AppendResp:
      return `${head} ${m.reject ? `reject ${m.index} hint=${m.hintIndex}/t${m.hintTerm}` : `ok ${m.index}`}`;
    case MsgType.Heartbeat:
      return `${head} commit=${m.commit} round=${m.round}${m.quiet ? " quiet" : ""}`;
    case MsgType.HeartbeatResp:
      return `${head} round=${m.round}`;
    case MsgType.Snapshot:
      return `${head} snap=${m.meta.index}/t${m.meta.term} chunk ${m.seq}${m.last ? ' last' : ''}`;
    case MsgType.SnapshotResp:
      return `${head} snap=${m.meta.index} seq=${m.seq}${m.done ? ' done' : ''}`;
    case MsgType.ReadIndex:
      return head;
    case MsgType.ReadIndexResp:
      return `${head} index=${m.index}`;
    case MsgType.TimeoutNow:
      return head;
  }
}

export function describeReady(rd: Ready): string {
  const parts: string[] = [];
  if (rd.softState) parts.push(`${rd.softState.role} t${rd.softState.term} leader=n${rd.softState.leader}`);
  if (rd.hardState) parts.push(`hard t${rd.hardState.term} vote=${rd.hardState.vote} commit=${rd.hardState.commit}`);
  if (rd.snapshotChunks.length > 0) parts.push(`${rd.snapshotChunks.length} chunk(s)`);
  if (rd.snapshot) parts.push(`install snap ${rd.snapshot.index}/t${rd.snapshot.term}`);
  if (rd.compaction) parts.push(`compact to ${rd.compaction.index}`);
  const e = rd.entries;
  if (e.length > 0) parts.push(`append ${e[0]?.index}..${e[e.length - 1]?.index}/t${e[e.length - 1]?.term}`);
  if (rd.messages.length > 0) parts.push(`send ${rd.messages.length}`);
  const c = rd.committedEntries;
  if (c.length > 0) parts.push(`apply ${c[0]?.index}..${c[c.length - 1]?.index}`);
  if (rd.readStates.length > 0) parts.push(`${rd.readStates.length} read(s) ok`);
  if (rd.failedReads.length > 0) parts.push(`${rd.failedReads.length} read(s) failed`);
  return parts.join(', ');
}
