// What a Raft entry of the replicated state machine carries. A client write is stored as its
// native-protocol request (type byte + body, exactly as it arrived or was encoded by a door), so no
// door needs its own command format, plus the leader's clock: session expiry uses time taken from
// the log, never a replica's own clock, so every replica expires the same sessions at the same index.
// Resharding adds ownership changes, imported partition data and purges of keys this group no
// longer holds (docs/resharding.md). Imports and purges have no leader time: the header's number
// names instead which partitions they may touch (the stay of an arriving partition they are for),
// a field that the first version wrote as 0 and never read, so its entries still decode as before.
import type { OwnershipChange } from './ownership.ts';
import { BadRequestError, decodeRequest, Reader, type Request } from '../wire/index.ts';
import { decodeExportChunk, type ExportChunk } from '../wire/handoff-codec.ts';

const VERSION = 1;
const Kind = { Write: 1, Ownership: 2, Import: 3, Purge: 4 } as const;
/** version, kind, leader time (f64; imports and purges: their target, below). */
const HEADER = 1 + 1 + 8;

/**
 * What an import or purge may touch, by the partition's state when applied: > 0, partitions arriving
 * here since that configuration epoch (Ownership.arrivedAt); DROPPING, partitions being dropped
 * (purges only); ANY, arriving or dropping, whichever stay (entries of the first version).
 */
export const HandOffTarget = { Any: 0, Dropping: -1 } as const;

export type Command =
  | { kind: 'noop' }
  | { kind: 'write'; timeMs: number; request: Request }
  | { kind: 'ownership'; change: OwnershipChange }
  | { kind: 'import'; chunk: ExportChunk; target: number }
  | { kind: 'purge'; keys: Uint8Array[]; target: number };

function header(kind: number, timeMs: number, bodyBytes: number): Buffer {
  const out = Buffer.allocUnsafe(HEADER + bodyBytes);
  out[0] = VERSION;
  out[1] = kind;
  out.writeDoubleBE(timeMs, 2);
  return out;
}

export function encodeWrite(timeMs: number, requestType: number, body: Uint8Array): Uint8Array {
  const out = header(Kind.Write, timeMs, 1 + body.length);
  out[HEADER] = requestType;
  out.set(body, HEADER + 1);
  return out;
}

export function encodeOwnership(change: OwnershipChange): Uint8Array {
  const json = Buffer.from(JSON.stringify(change), 'utf8');
  const out = header(Kind.Ownership, 0, json.length);
  out.set(json, HEADER);
  return out;
}

/**
 * `chunkBody` is an EXPORT_CHUNK frame body, stored as it came from the source group; `arrivedAt`
 * the stay of the arriving partitions it is for.
 */
export function encodeImport(chunkBody: Uint8Array, arrivedAt: number): Uint8Array {
  const out = header(Kind.Import, arrivedAt, chunkBody.length);
  out.set(chunkBody, HEADER);
  return out;
}

/** `target`: an arriving partition's stay (Ownership.arrivedAt), or HandOffTarget.Dropping. */
export function encodePurge(keys: readonly Uint8Array[], target: number): Uint8Array {
  let n = 4;
  for (const k of keys) n += 2 + k.length;
  const out = header(Kind.Purge, target, n);
  let at = HEADER;
  out.writeUInt32BE(keys.length, at);
  at += 4;
  for (const k of keys) {
    out.writeUInt16BE(k.length, at);
    out.set(k, at + 2);
    at += 2 + k.length;
  }
  return out;
}

export function decodeCommand(data: Uint8Array): Command {
  if (data.length === 0) return { kind: 'noop' };
  if (data.length < HEADER || data[0] !== VERSION) throw new BadRequestError(`unknown command encoding (version ${data[0]})`);
  const view = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const body = view.subarray(HEADER);
  switch (view[1]) {
    case Kind.Write:
      if (body.length < 1) throw new BadRequestError('empty write command');
      return { kind: 'write', timeMs: view.readDoubleBE(2), request: decodeRequest(body[0]!, body.subarray(1)) };
    case Kind.Ownership:
      return { kind: 'ownership', change: JSON.parse(body.toString('utf8')) as OwnershipChange };
    case Kind.Import:
      return { kind: 'import', chunk: decodeExportChunk(body), target: view.readDoubleBE(2) };
    case Kind.Purge: {
      const r = new Reader(body, 'purge');
      const n = r.u32();
      if (n > r.remaining / 2) r.fail(`${n} keys do not fit`);
      const keys: Uint8Array[] = [];
      for (let i = 0; i < n; i++) keys.push(r.bytes16());
      r.done();
      return { kind: 'purge', keys, target: view.readDoubleBE(2) };
    }
    default:
      throw new BadRequestError(`unknown command kind ${view[1]}`);
  }
}
