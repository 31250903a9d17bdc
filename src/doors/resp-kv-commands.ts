// The data commands of the RESP door, each a few calls on KvOps. Read-modify-write commands (INCR,
// SET with NX/XX/GET, DEL's count, GETDEL, APPEND) go through KeyUpdater's compare-and-set loop;
// MSET is one atomic batch; multi-key reads are independent reads run side by side.
import { globMatch, globPrefix, prefixEnd } from './glob.ts';
import {
  RespCommandError,
  inI64,
  replyForError,
  lower,
  notInteger,
  parseI64,
  syntaxError,
  text,
  type CommandKind,
  type RespCommand,
  type RespEnv,
} from './resp-command.ts';
import { resp, type RespValue } from './resp-codec.ts';
import { KvError } from './kv-ops.ts';
import type { BatchOp } from '../wire/index.ts';

type Run = RespCommand['run'];

function command(name: string, arity: number, kind: CommandKind, flags: string[], keys: [number, number, number], summary: string, run: Run, group = 'string'): RespCommand {
  return { name, arity, kind, flags, firstKey: keys[0], lastKey: keys[1], step: keys[2], group, summary, run };
}

const get: Run = async (args, { server }) => resp.bulk(await server.kv.get(args[1]!));

interface SetOptions {
  nx: boolean;
  xx: boolean;
  get: boolean;
}

function setOptions(args: Buffer[]): SetOptions {
  const o: SetOptions = { nx: false, xx: false, get: false };
  for (let i = 3; i < args.length; i++) {
    const a = lower(args[i]!);
    if (a === 'nx') o.nx = true;
    else if (a === 'xx') o.xx = true;
    else if (a === 'get') o.get = true;
    else if (a === 'keepttl') continue; // there are no TTLs to keep
    else if (a === 'ex' || a === 'px' || a === 'exat' || a === 'pxat') throw new RespCommandError('ERR key expiry (EX, PX, EXAT, PXAT) is not supported by this server');
    else throw syntaxError();
  }
  if (o.nx && o.xx) throw syntaxError();
  return o;
}

const set: Run = async (args, { server }) => {
  const [, key, value] = args as [Buffer, Buffer, Buffer];
  const o = setOptions(args);
  if (!o.nx && !o.xx && !o.get) {
    await server.kv.put(key, value);
    return resp.ok;
  }
  if (o.nx && !o.get) {
    // One CAS answers it: "absent → value" either applies or reports that the key exists.
    const r = await server.kv.cas(key, null, value);
    return r.ok ? resp.ok : resp.null;
  }
  return server.updater.update(key, (cur) => {
    const old = o.get ? resp.bulk(cur) : resp.null;
    if ((o.nx && cur !== null) || (o.xx && cur === null)) return { write: false, result: old };
    return { write: true, value, result: o.get ? old : resp.ok };
  });
};

const setnx: Run = async (args, { server }) => resp.int((await server.kv.cas(args[1]!, null, args[2]!)).ok ? 1 : 0);

const getset: Run = (args, { server }) => server.updater.update(args[1]!, (cur) => ({ write: true, value: args[2]!, result: resp.bulk(cur) }));

const getdel: Run = (args, { server }) =>
  server.updater.update(args[1]!, (cur) => (cur === null ? { write: false, result: resp.null } : { write: true, value: null, result: resp.bulk(cur) }));

function deleteCount(key: Buffer, env: RespEnv): Promise<number> {
  return env.server.updater.update(key, (cur) => (cur === null ? { write: false, result: 0 } : { write: true, value: null, result: 1 }));
}

/**
 * Keys of one multi-key command worked on at once. A command may name 128k keys: started all at
 * once, one MGET held the event loop for seconds and other connections waited (found in review).
 */
export const KEYS_IN_FLIGHT = 64;

/** `fn` over every key, at most KEYS_IN_FLIGHT at a time, each outcome in the keys' order. */
async function eachKey<T>(keys: readonly Buffer[], fn: (key: Buffer) => Promise<T>, stopOnError: boolean): Promise<PromiseSettledResult<T>[]> {
  const out: PromiseSettledResult<T>[] = new Array<PromiseSettledResult<T>>(keys.length);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (next < keys.length && !(stopOnError && failed)) {
      const i = next++;
      try {
        out[i] = { status: 'fulfilled', value: await fn(keys[i]!) };
      } catch (reason) {
        out[i] = { status: 'rejected', reason };
        failed = true;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(KEYS_IN_FLIGHT, keys.length) }, worker));
  return out;
}

/** Every key's value in order; the first failure fails the command (a read changes nothing). */
async function readEach<T>(keys: readonly Buffer[], fn: (key: Buffer) => Promise<T>): Promise<T[]> {
  const settled = await eachKey(keys, fn, true);
  const failure = settled.find((r) => r?.status === 'rejected');
  if (failure) throw failure.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<T>).value);
}

const del: Run = async (args, env) => {
  const settled = await eachKey(args.slice(1), (k) => deleteCount(k, env), false);
  let deleted = 0;
  let failure: { reason: unknown } | undefined;
  let inDoubt: { reason: unknown } | undefined;
  for (const r of settled) {
    if (r.status === 'fulfilled') deleted += r.value;
    else {
      failure ??= r;
      if (r.reason instanceof KvError && r.reason.error.code === 'TIMEOUT') inDoubt ??= r;
    }
  }
  if (!failure) return resp.int(deleted);
  // Nothing known deleted: a key's error says it all, a TIMEOUT first (that delete may have
  // applied: another key's "not applied", -TRYAGAIN, would hide it). Some deleted: the reply must
  // not say "retry, nothing applied" (-TRYAGAIN), and says how many went.
  if (deleted === 0) throw (inDoubt ?? failure).reason;
  // A timed-out delete may have applied too: the count is a lower bound then, and the TIMEOUT is
  // named rather than another key's "not applied".
  const why = replyForError((inDoubt ?? failure).reason);
  throw new RespCommandError(`ERR deleted ${inDoubt ? 'at least ' : ''}${deleted} of the keys, then failed: ${why.type === 'error' ? why.value : 'error'}`);
};

const exists: Run = async (args, { server }) => {
  const values = await readEach(args.slice(1), (k) => server.kv.get(k));
  return resp.int(values.filter((v) => v !== null).length);
};

const mget: Run = async (args, { server }) => resp.array((await readEach(args.slice(1), (k) => server.kv.get(k))).map((v) => resp.bulk(v)));

const mset: Run = async (args, { server }) => {
  if (args.length % 2 !== 1) throw new RespCommandError("ERR wrong number of arguments for 'mset' command");
  const ops = [];
  for (let i = 1; i < args.length; i += 2) ops.push({ op: 'put' as const, key: args[i]!, value: args[i + 1]! });
  await server.kv.batch(ops);
  return resp.ok;
};

function incrBy(key: Buffer, delta: bigint, env: RespEnv): Promise<RespValue> {
  return env.server.updater.update(key, (cur) => {
    const n = cur === null ? 0n : parseI64(cur);
    if (n === null) throw notInteger();
    const next = n + delta;
    if (!inI64(next)) throw new RespCommandError('ERR increment or decrement would overflow');
    return { write: true, value: Buffer.from(next.toString()), result: resp.int(next) };
  });
}

function deltaArg(b: Buffer): bigint {
  const d = parseI64(b);
  if (d === null) throw notInteger();
  return d;
}

const incr: Run = (args, env) => incrBy(args[1]!, 1n, env);
const decr: Run = (args, env) => incrBy(args[1]!, -1n, env);
const incrby: Run = (args, env) => incrBy(args[1]!, deltaArg(args[2]!), env);
const decrby: Run = (args, env) => {
  const d = deltaArg(args[2]!);
  if (d === -(2n ** 63n)) throw new RespCommandError('ERR decrement would overflow');
  return incrBy(args[1]!, -d, env);
};

const append: Run = (args, env) =>
  env.server.updater.update(args[1]!, (cur) => {
    const next = cur === null ? args[2]! : Buffer.concat([cur, args[2]!]);
    return { write: true, value: next, result: resp.int(next.length) };
  });

const strlen: Run = async (args, { server }) => resp.int((await server.kv.get(args[1]!))?.length ?? 0);

const type: Run = async (args, { server }) => resp.simple((await server.kv.get(args[1]!)) === null ? 'none' : 'string');

function compare(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

/** SCAN cursor [MATCH pattern] [COUNT n] [TYPE t]: one page of the ordered key space. */
const scan: Run = async (args, { server }) => {
  const start = server.cursors.resolve(text(args[1]!));
  if (start === undefined) throw new RespCommandError('ERR invalid cursor');
  let pattern: Buffer | null = null;
  let count = 10;
  let typeFilter: string | null = null;
  for (let i = 2; i < args.length; i += 2) {
    const opt = lower(args[i]!);
    const v = args[i + 1];
    if (v === undefined) throw syntaxError();
    if (opt === 'match') pattern = v;
    else if (opt === 'count') {
      // As Redis: not an integer is one error, an integer below 1 (negative included) a syntax error.
      const n = parseI64(v);
      if (n === null) throw notInteger();
      if (n < 1n) throw syntaxError();
      count = n > 10_000n ? 10_000 : Number(n);
    } else if (opt === 'type') typeFilter = lower(v);
    else throw syntaxError();
  }
  // Every key is a string: another TYPE matches nothing, so there is nothing to walk.
  if (typeFilter !== null && typeFilter !== 'string') return resp.array([resp.bulk('0'), resp.array([])]);
  // A pattern's literal prefix bounds the range, so "SCAN 0 MATCH user:*" reads only user: keys.
  const prefix = pattern ? globPrefix(pattern) : new Uint8Array(0);
  // No key can be longer than the limit, so a longer literal prefix matches nothing (as in Redis).
  if (prefix.length > server.kv.limits.maxKeyBytes) return resp.array([resp.bulk('0'), resp.array([])]);
  const from = compare(start, prefix) >= 0 ? start : prefix;
  const end = prefix.length > 0 ? prefixEnd(prefix) : null;
  if (end && compare(from, end) >= 0) return resp.array([resp.bulk('0'), resp.array([])]);
  const page = await server.kv.scan(from, end, Math.min(count, 10_000));
  const keys = page.items.filter((kv) => !pattern || globMatch(pattern, kv.key)).map((kv) => resp.bulk(kv.key));
  const next = page.more ? server.cursors.issue(page.more) : '0';
  return resp.array([resp.bulk(next), resp.array(keys)]);
};

/**
 * MEMORY USAGE key [SAMPLES n]: the key's and value's bytes (what the store keeps), or nil. redis-cli
 * --memkeys asks it of every key and printed a warning for each while it was unknown here.
 */
const memory: Run = async (args, { server }) => {
  const sub = lower(args[1]!);
  if (sub !== 'usage') throw new RespCommandError(`ERR unknown subcommand '${text(args[1]!).slice(0, 128)}'. Try MEMORY HELP.`);
  if (args.length < 3) throw new RespCommandError("ERR wrong number of arguments for 'memory|usage' command");
  // As Redis 7.0: SAMPLES n any number of times (the last wins; unused here), n a non-negative integer.
  for (let j = 3; j < args.length; j += 2) {
    if (lower(args[j]!) !== 'samples' || j + 1 >= args.length) throw syntaxError();
    const n = parseI64(args[j + 1]!);
    if (n === null) throw notInteger();
    if (n < 0n) throw syntaxError();
  }
  const value = await server.kv.get(args[2]!);
  return value === null ? resp.null : resp.int(args[2]!.length + value.length);
};

/** DBSIZE: the whole store's keys, every shard group's (INFO keyspace describes this replica's group). */
const dbsize: Run = async (_args, { server }) => resp.int(await server.kv.count());

/** SET without options and MSET only put: a connection may send a run of them as one batch. */
function setPuts(args: Buffer[]): BatchOp[] | undefined {
  return args.length === 3 ? [{ op: 'put', key: args[1]!, value: args[2]! }] : undefined;
}

function msetPuts(args: Buffer[]): BatchOp[] | undefined {
  if (args.length % 2 !== 1) return undefined;
  const ops: BatchOp[] = [];
  for (let i = 1; i < args.length; i += 2) ops.push({ op: 'put', key: args[i]!, value: args[i + 1]! });
  return ops;
}

export const KV_COMMANDS: RespCommand[] = [
  command('get', 2, 'read', ['readonly', 'fast'], [1, 1, 1], 'Returns the value of a key.', get),
  { ...command('set', -3, 'write', ['write', 'denyoom'], [1, 1, 1], 'Sets a key; NX, XX and GET are supported, expiry is not.', set), puts: setPuts },
  command('setnx', 3, 'write', ['write', 'denyoom', 'fast'], [1, 1, 1], 'Sets a key only if it does not exist.', setnx),
  command('getset', 3, 'write', ['write', 'denyoom', 'fast'], [1, 1, 1], 'Sets a key and returns its old value.', getset),
  command('getdel', 2, 'write', ['write', 'fast'], [1, 1, 1], 'Returns a key\'s value and deletes it.', getdel),
  command('del', -2, 'write', ['write'], [1, -1, 1], 'Deletes keys; returns how many existed.', del, 'generic'),
  command('unlink', -2, 'write', ['write', 'fast'], [1, -1, 1], 'Deletes keys (same as DEL).', del, 'generic'),
  command('exists', -2, 'read', ['readonly', 'fast'], [1, -1, 1], 'Counts how many of the keys exist.', exists, 'generic'),
  command('mget', -2, 'read', ['readonly', 'fast'], [1, -1, 1], 'Returns the values of several keys.', mget),
  { ...command('mset', -3, 'write', ['write', 'denyoom'], [1, -1, 2], 'Sets several keys (atomically within a partition).', mset), puts: msetPuts },
  command('incr', 2, 'write', ['write', 'denyoom', 'fast'], [1, 1, 1], 'Adds one to an integer value.', incr),
  command('decr', 2, 'write', ['write', 'denyoom', 'fast'], [1, 1, 1], 'Subtracts one from an integer value.', decr),
  command('incrby', 3, 'write', ['write', 'denyoom', 'fast'], [1, 1, 1], 'Adds to an integer value.', incrby),
  command('decrby', 3, 'write', ['write', 'denyoom', 'fast'], [1, 1, 1], 'Subtracts from an integer value.', decrby),
  command('append', 3, 'write', ['write', 'denyoom', 'fast'], [1, 1, 1], 'Appends to a value; returns the new length.', append),
  command('strlen', 2, 'read', ['readonly', 'fast'], [1, 1, 1], 'Returns the length of a value.', strlen),
  command('type', 2, 'read', ['readonly', 'fast'], [1, 1, 1], 'Returns "string" or "none".', type, 'generic'),
  command('scan', -2, 'read', ['readonly'], [0, 0, 0], 'Iterates over the key space in key order.', scan, 'generic'),
  command('memory', -2, 'read', ['readonly'], [2, 2, 1], 'MEMORY USAGE: a key\'s key and value bytes.', memory, 'server'),
  command('dbsize', 1, 'read', ['readonly', 'fast'], [0, 0, 0], 'Returns the number of keys in the store (every shard group).', dbsize, 'server'),
];
