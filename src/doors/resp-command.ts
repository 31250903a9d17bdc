// What a RESP command is (its table entry, as COMMAND reports it) and what it runs against, plus
// the small argument helpers and the mapping of our error codes onto Redis error replies.
import type { BatchOp } from '../wire/index.ts';
import type { DoorContext } from './door-context.ts';
import type { KeyUpdater } from './key-updater.ts';
import { KvError, type KvOps } from './kv-ops.ts';
import { resp, type RespValue, type RespVersion } from './resp-codec.ts';
import type { ScanCursors } from './scan-cursors.ts';
import type { RespWriteBatcher } from './resp-write-batcher.ts';

/**
 * How a command orders against the others of its connection (pipelined commands are answered in
 * order, and their effects must follow the same order): reads run alongside other reads, a write
 * waits for everything before it and holds back everything after it; `none` touches no data.
 */
export type CommandKind = 'read' | 'write' | 'none';

export interface RespConnection {
  readonly id: number;
  version: RespVersion;
  name: string;
  /** Library name/version from CLIENT SETINFO. */
  lib: string;
  readonly openedAt: number;
  readonly remote: string;
  /** Set by QUIT: close once this command's reply is written. */
  closeAfterReply: boolean;
}

export interface RespServer {
  kv: KvOps;
  updater: KeyUpdater;
  /** Blind writes of every connection, proposed together (group commit across connections). */
  writes: RespWriteBatcher;
  cursors: ScanCursors;
  ctx: DoorContext;
  commands: ReadonlyMap<string, RespCommand>;
  /** host:port this door listens on. */
  address: string;
  connections(): number;
  clientList(): RespConnection[];
  /** Since the door started or the last CONFIG RESETSTAT, for INFO stats (redis-cli --stat reads them). */
  stats: { connectionsReceived: number; commandsProcessed: number };
}

export interface RespEnv {
  server: RespServer;
  conn: RespConnection;
}

export interface RespCommand {
  /** Lower case, as COMMAND reports it. */
  name: string;
  /** Redis convention: N means exactly N arguments (name included), -N at least N. */
  arity: number;
  flags: string[];
  firstKey: number;
  lastKey: number;
  step: number;
  kind: CommandKind;
  group: string;
  summary: string;
  run(args: Buffer[], env: RespEnv): RespValue | Promise<RespValue>;
  /**
   * For blind writes (plain SET, MSET): the puts this call amounts to, so consecutive ones queued
   * on a connection can go to the log as one batch; undefined when this call is not one.
   */
  puts?(args: Buffer[]): BatchOp[] | undefined;
}

/** A reply error raised by a command; the message starts with its code ("ERR ...", "WRONGTYPE ..."). */
export class RespCommandError extends Error {
  override readonly name = 'RespCommandError';
}

export const syntaxError = (): RespCommandError => new RespCommandError('ERR syntax error');
export const notInteger = (): RespCommandError => new RespCommandError('ERR value is not an integer or out of range');

export function lower(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1').toLowerCase();
}

export function text(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString();
}

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;

/** A signed 64-bit integer in Redis's strict form (no spaces, no '+', no leading zeros); null if not. */
export function parseI64(b: Uint8Array | null): bigint | null {
  if (b === null || b.length === 0 || b.length > 20) return null;
  const s = Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
  if (!/^(0|-?[1-9]\d*)$/.test(s)) return null;
  const n = BigInt(s);
  return n < I64_MIN || n > I64_MAX ? null : n;
}

export function inI64(n: bigint): boolean {
  return n >= I64_MIN && n <= I64_MAX;
}

/** Our error codes as Redis error replies: a code word clients can switch on, then the message. */
export function replyForError(e: unknown): RespValue {
  if (e instanceof RespCommandError) return resp.error(e.message);
  if (e instanceof KvError) {
    const err = e.error;
    switch (err.code) {
      case 'TOO_LARGE':
      case 'BAD_REQUEST':
        return resp.error(`ERR ${err.message}`);
      case 'TIMEOUT':
        return resp.error(`TIMEOUT ${err.message}`);
      case 'NOT_LEADER':
        return resp.error(`TRYAGAIN no leader available (${err.message})`);
      case 'WRONG_GROUP':
        return resp.error(`TRYAGAIN key moved to another group (epoch ${err.epoch})`);
      case 'UNAVAILABLE':
        return resp.error(`TRYAGAIN ${err.message}`);
    }
  }
  return resp.error(`ERR internal error: ${e instanceof Error ? e.message : String(e)}`);
}

/** The outcome label for metrics. */
export function outcomeOf(reply: RespValue): string {
  if (reply.type !== 'error') return 'ok';
  const word = reply.value.split(' ', 1)[0] ?? 'ERR';
  return word;
}
