// How a multi-key batch becomes one request per partition: shared by the server's splitter
// (router/sharded.ts) and the smart client, so both split alike.
import type { BatchOp, Request } from '../wire/index.ts';

type BatchRequest = Extract<Request, { op: 'batch' }>;

/**
 * A batch as the requests it becomes, one per partition, in order of first appearance. Each part
 * carries a session id derived from (clientId, partition) and the batch's seq — also a batch within
 * one partition — so a part retried after a hand-off still applies once (docs/resharding.md), and
 * one client's batches on one partition share one session, whose seq order the state machine keeps
 * (a retried earlier batch cannot apply after a later one: what the RESP door's ordering relies on). The server's splitter and the smart client use this one
 * function: a batch first sent through a replica and retried by a client that splits it itself
 * (or the other way round) becomes the same parts with the same session ids.
 */
export function splitBatch(req: BatchRequest, partitionOf: (key: Uint8Array) => number): { partition: number; req: BatchRequest }[] {
  const parts = new Map<number, BatchOp[]>();
  for (const op of req.ops) {
    const p = partitionOf(op.key);
    const list = parts.get(p);
    if (list) list.push(op);
    else parts.set(p, [op]);
  }
  if (parts.size === 1 && req.clientId === 0n) return [...parts.keys()].map((partition) => ({ partition, req }));
  return [...parts].map(([partition, ops]) => ({
    partition,
    req: { op: 'batch', ops, clientId: req.clientId === 0n ? 0n : derivedClientId(req.clientId, partition), seq: req.seq },
  }));
}

/** splitmix64 of (clientId, partition): distinct per partition, stable across retries. */
export function derivedClientId(clientId: bigint, partition: number): bigint {
  const M = (1n << 64n) - 1n;
  let z = (clientId + 0x9e3779b97f4a7c15n * BigInt(partition + 1)) & M;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M;
  const id = z ^ (z >> 31n);
  return id === 0n ? 1n : id;
}

/**
 * What a batch split into `parts` answers when some parts failed (undefined: none did). A part whose
 * outcome is unknown (TIMEOUT), or parts applied beside a failed one, leave the batch's outcome
 * unknown to its caller, so TIMEOUT ("may have applied"), never a code that says nothing applied: a
 * retry with the batch's session applies each part at most once. Otherwise the first failure.
 * The server's splitter passes wire errors; the smart client, what its parts threw (`describe` gives
 * each one's code and message, `timeout` makes the TIMEOUT of a partly applied batch).
 */
export function batchFailure<E>(failed: readonly E[], parts: number, describe: (e: E) => { code: string; message: string }, timeout: (message: string) => E): E | undefined {
  if (failed.length === 0) return undefined;
  const unknown = failed.find((e) => describe(e).code === 'TIMEOUT');
  if (unknown !== undefined) return unknown;
  if (failed.length === parts) return failed[0];
  const first = describe(failed[0]!);
  return timeout(`${parts - failed.length} of ${parts} parts of the batch applied (each part, one partition's keys, is atomic), another failed: ${first.code}: ${first.message}`);
}
