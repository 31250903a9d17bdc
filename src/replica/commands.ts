// What a Raft entry of the replicated state machine carries. A client write is stored as its
// native-protocol request (type byte + body, exactly as it arrived or was encoded by a door), so no
// door needs its own command format, plus the leader's clock: session expiry uses time taken from
// the log, never a replica's own clock, so every replica expires the same sessions at the same index.
import { BadRequestError, decodeRequest, type Request } from '../wire/index.ts';

const VERSION = 1;
const KIND_CLIENT_WRITE = 1;
const HEADER = 1 + 1 + 8 + 1;

export type Command = { kind: 'noop' } | { kind: 'write'; timeMs: number; request: Request };

export function encodeWrite(timeMs: number, requestType: number, body: Uint8Array): Uint8Array {
  const out = Buffer.allocUnsafe(HEADER + body.length);
  out[0] = VERSION;
  out[1] = KIND_CLIENT_WRITE;
  out.writeDoubleBE(timeMs, 2);
  out[10] = requestType;
  out.set(body, HEADER);
  return out;
}

export function decodeCommand(data: Uint8Array): Command {
  if (data.length === 0) return { kind: 'noop' };
  if (data.length < HEADER || data[0] !== VERSION) throw new BadRequestError(`unknown command encoding (version ${data[0]})`);
  const view = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (view[1] !== KIND_CLIENT_WRITE) throw new BadRequestError(`unknown command kind ${view[1]}`);
  const request = decodeRequest(view[10]!, view.subarray(HEADER));
  return { kind: 'write', timeMs: view.readDoubleBE(2), request };
}
