// The RESP door in-process, over real sockets, against an in-memory executor: command semantics,
// pipelining and ordering, group commit of blind writes, combined INCRs, error mapping, and bad
// input (protocol errors, oversized and hostile frames, random bytes) that must never stop it.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { Door } from '../../src/doors/door-context.ts';
import { startRespDoor } from '../../src/doors/resp-door.ts';
import { MemoryExecutor, fakeContext, type FakeContext } from './memory-executor.ts';
import { Prng } from './prng.ts';
import { RespClient, encodeCommand, plain } from './resp-client.ts';

describe('RESP door', () => {
  let exec: MemoryExecutor;
  let ctx: FakeContext;
  let door: Door;
  let port: number;
  let c: RespClient;
  const call = async (...args: string[]): Promise<unknown> => plain(await c.call(...args));

  before(async () => {
    exec = new MemoryExecutor();
    ctx = fakeContext(exec, { maxKeyBytes: 64, maxValueBytes: 1024 });
    door = await startRespDoor(ctx, { listen: '127.0.0.1:0' });
    port = Number(door.address.split(':')[1]);
  });
  after(async () => {
    await door.close();
  });
  beforeEach(async () => {
    c?.close();
    exec.data.clear();
    exec.seen.length = 0;
    exec.failWith = null;
    c = await RespClient.connect(port);
  });

  it('GET, SET with NX / XX / GET, SETNX, GETSET, GETDEL', async () => {
    assert.equal(await call('GET', 'k'), null);
    assert.equal(await call('SET', 'k', 'v1'), 'OK');
    assert.equal(await call('GET', 'k'), 'v1');
    assert.equal(await call('SET', 'k', 'v2', 'NX'), null);
    assert.equal(await call('SET', 'k', 'v2', 'nx', 'GET'), 'v1');
    assert.equal(await call('SET', 'new', 'x', 'XX'), null);
    assert.equal(await call('SET', 'k', 'v3', 'XX', 'GET'), 'v1');
    assert.equal(await call('SET', 'k', 'v4', 'GET'), 'v3');
    assert.equal(await call('SET', 'missing', 'v', 'GET'), null);
    assert.deepEqual(await call('SET', 'k', 'v', 'NX', 'XX'), { error: 'ERR syntax error' });
    assert.deepEqual(await call('SET', 'k', 'v', 'EX', '10'), { error: 'ERR key expiry (EX, PX, EXAT, PXAT) is not supported by this server' });
    assert.equal(await call('SET', 'k', 'v', 'KEEPTTL'), 'OK');
    assert.equal(await call('SETNX', 'k', 'z'), 0);
    assert.equal(await call('SETNX', 'k2', 'z'), 1);
    assert.equal(await call('GETSET', 'k2', 'y'), 'z');
    assert.equal(await call('GETDEL', 'k2'), 'y');
    assert.equal(await call('GETDEL', 'k2'), null);
  });

  it('DEL, EXISTS, MGET, MSET, APPEND, STRLEN, TYPE, DBSIZE', async () => {
    assert.equal(await call('MSET', 'a', '1', 'b', '2', 'c', '3'), 'OK');
    assert.deepEqual(await call('MSET', 'a', '1', 'b'), { error: "ERR wrong number of arguments for 'mset' command" });
    assert.deepEqual(await call('MGET', 'a', 'nope', 'c'), ['1', null, '3']);
    assert.equal(await call('EXISTS', 'a', 'a', 'nope'), 2);
    assert.equal(await call('DEL', 'a', 'nope', 'a', 'b'), 2);
    assert.equal(await call('APPEND', 'c', 'xy'), 3);
    assert.equal(await call('STRLEN', 'c'), 3);
    assert.equal(await call('TYPE', 'c'), 'string');
    assert.equal(await call('TYPE', 'a'), 'none');
    assert.equal(await call('DBSIZE'), 1);
  });

  it('INCR family: integers, errors, overflow', async () => {
    assert.equal(await call('INCR', 'n'), 1);
    assert.equal(await call('INCRBY', 'n', '41'), 42);
    assert.equal(await call('DECR', 'n'), 41);
    assert.equal(await call('DECRBY', 'n', '-9'), 50);
    assert.equal(await call('SET', 'big', '9223372036854775807'), 'OK');
    assert.deepEqual(await call('INCR', 'big'), { error: 'ERR increment or decrement would overflow' });
    assert.equal(await call('GET', 'big'), '9223372036854775807');
    assert.equal(await call('SET', 's', 'abc'), 'OK');
    assert.deepEqual(await call('INCR', 's'), { error: 'ERR value is not an integer or out of range' });
    assert.deepEqual(await call('INCRBY', 'n', '1.5'), { error: 'ERR value is not an integer or out of range' });
    assert.deepEqual(await call('INCRBY', 'n', '007'), { error: 'ERR value is not an integer or out of range' });
    assert.equal(await call('GET', 'n'), '50');
  });

  it('SCAN walks the key space with numeric cursors, MATCH, COUNT and TYPE', async () => {
    const keys = Array.from({ length: 25 }, (_, i) => `user:${String(i).padStart(2, '0')}`);
    await call('MSET', ...keys.flatMap((k) => [k, 'x']), 'other', 'y');
    const seen: string[] = [];
    let cursor = '0';
    let rounds = 0;
    do {
      const [next, page] = (await call('SCAN', cursor, 'COUNT', '7')) as [string, string[]];
      assert.match(next, /^\d+$/); // clients parse cursors as unsigned 64-bit integers
      seen.push(...page);
      cursor = next;
      rounds++;
    } while (cursor !== '0');
    assert.deepEqual(seen, ['other', ...keys]); // key order
    assert.equal(rounds, 4);
    const [c1, matched] = (await call('SCAN', '0', 'MATCH', 'user:1?', 'COUNT', '100')) as [string, string[]];
    assert.equal(c1, '0');
    assert.deepEqual(matched, keys.slice(10, 20));
    assert.deepEqual(await call('SCAN', '0', 'TYPE', 'hash'), ['0', []]);
    assert.deepEqual(await call('SCAN', '12345'), { error: 'ERR invalid cursor' });
    assert.deepEqual(await call('SCAN', '00', 'MATCH', 'user:1?', 'COUNT', '100'), ['0', keys.slice(10, 20)], 'a cursor is a number: 00 is 0');
    assert.deepEqual(await call('SCAN', '0', 'COUNT', '0'), { error: 'ERR syntax error' });
    assert.deepEqual(await call('SCAN', '0', 'COUNT', '-1'), { error: 'ERR syntax error' }, 'as Redis: a negative COUNT is a syntax error');
    assert.deepEqual(await call('SCAN', '0', 'COUNT', 'x'), { error: 'ERR value is not an integer or out of range' });
    assert.deepEqual(await call('SCAN', '0', 'MATCH'), { error: 'ERR syntax error' });
  });

  it('checks sizes before anything is sent', async () => {
    assert.deepEqual(await call('SET', 'k', 'x'.repeat(1025)), { error: 'ERR value of 1025 bytes exceeds the limit of 1024 bytes' });
    assert.deepEqual(await call('GET', 'k'.repeat(65)), { error: 'ERR key of 65 bytes exceeds the limit of 64 bytes' });
    assert.deepEqual(await call('SET', '', 'x'), { error: 'ERR the empty key cannot be stored' });
    assert.equal(await call('GET', ''), null);
    assert.equal(exec.seen.filter((r) => r.op !== 'get').length, 0);
  });

  it('MEMORY USAGE: key and value bytes, nil for a missing key (redis-cli --memkeys)', async () => {
    // Unknown before: redis-cli --memkeys printed "MEMORY USAGE on 'k' failed" for every key.
    assert.equal(await call('SET', 'mem', 'twelve bytes'), 'OK');
    assert.equal(await call('MEMORY', 'USAGE', 'mem'), 3 + 12);
    assert.equal(await call('MEMORY', 'usage', 'mem', 'SAMPLES', '0'), 15);
    assert.equal(await call('MEMORY', 'USAGE', 'nope'), null);
    assert.deepEqual(await call('MEMORY', 'USAGE', 'mem', 'SAMPLES'), { error: 'ERR syntax error' });
    assert.deepEqual(await call('MEMORY', 'USAGE', 'mem', 'SAMPLES', 'x'), { error: 'ERR value is not an integer or out of range' });
    // As Redis 7.0 (object.c): a negative SAMPLES is a syntax error, SAMPLES may repeat.
    assert.deepEqual(await call('MEMORY', 'USAGE', 'mem', 'SAMPLES', '-1'), { error: 'ERR syntax error' });
    assert.equal(await call('MEMORY', 'USAGE', 'mem', 'SAMPLES', '5', 'SAMPLES', '0'), 15);
    assert.deepEqual(await call('MEMORY', 'USAGE', 'mem', 'SAMPLES', '5', 'SAMPLES'), { error: 'ERR syntax error' });
    assert.deepEqual(await call('MEMORY', 'USAGE'), { error: "ERR wrong number of arguments for 'memory|usage' command" });
    assert.deepEqual(await call('MEMORY', 'DOCTOR'), { error: "ERR unknown subcommand 'DOCTOR'. Try MEMORY HELP." });
  });

  it('INFO has the fields redis-cli --stat reads, as integers', async () => {
    // redis-cli --stat finds each field by substring in plain INFO and printed LONG_MIN
    // (-9223372036854775808) for every one that was missing (found by an outside tester).
    const field = (info: string, name: string): number => {
      const at = info.indexOf(`${name}:`);
      assert.ok(at >= 0, `INFO has no ${name}`);
      return Number(info.slice(at + name.length + 1).split(/[\r,]/, 1)[0]);
    };
    const before = String(await call('INFO'));
    for (const name of ['used_memory', 'connected_clients', 'blocked_clients', 'total_commands_processed', 'total_connections_received', 'bgsave_in_progress', 'aof_rewrite_in_progress', 'loading']) {
      assert.ok(Number.isSafeInteger(field(before, name)), `${name} in\n${before}`);
    }
    assert.ok(field(before, 'used_memory') > 0);
    assert.equal(field(before, 'loading'), 0);
    await call('PING');
    const after = String(await call('INFO', 'stats'));
    assert.equal(field(after, 'total_commands_processed'), field(before, 'total_commands_processed') + 2, 'INFO and PING');
    assert.ok(field(after, 'total_connections_received') >= 1);
    assert.match(String(await call('INFO', 'memory')), /^# Memory\r\nused_memory:\d+\r\n/);
  });

  it('CONFIG RESETSTAT resets the INFO stats counters, as Redis', async () => {
    // It answered OK and reset nothing: total_commands_processed kept counting from the door's start.
    const stat = async (name: string): Promise<number> => Number(new RegExp(`${name}:(\\d+)`).exec(String(await call('INFO', 'stats')))![1]);
    for (let i = 0; i < 5; i++) await call('PING');
    assert.ok((await stat('total_commands_processed')) >= 5);
    assert.equal(await call('CONFIG', 'RESETSTAT'), 'OK');
    assert.equal(await stat('total_commands_processed'), 1, 'RESETSTAT itself, counted once it has run (as Redis)');
    assert.equal(await stat('total_connections_received'), 0);
  });

  it('server commands: PING, ECHO, SELECT, CLIENT, COMMAND, CONFIG GET, INFO, TIME, AUTH', async () => {
    assert.equal(await call('PING'), 'PONG');
    assert.equal(await call('PING', 'hi'), 'hi');
    assert.equal(await call('ECHO', 'a b'), 'a b');
    assert.equal(await call('SELECT', '0'), 'OK');
    assert.deepEqual(await call('SELECT', '3'), { error: 'ERR DB index is out of range' });
    assert.deepEqual(await call('SELECT', 'abc'), { error: 'ERR value is not an integer or out of range' });
    assert.equal(await call('CLIENT', 'SETNAME', 'me'), 'OK');
    assert.equal(await call('CLIENT', 'GETNAME'), 'me');
    assert.deepEqual(await call('CLIENT', 'SETNAME', 'a b'), { error: 'ERR Client names cannot contain spaces, newlines or special characters.' });
    assert.equal(typeof (await call('CLIENT', 'ID')), 'number');
    assert.deepEqual(await call('CLIENT', 'GETNAME', 'x'), { error: "ERR wrong number of arguments for 'client|getname' command" });
    assert.deepEqual(await call('CLIENT', 'NO-EVICT'), { error: "ERR wrong number of arguments for 'client|no-evict' command" });
    assert.equal(await call('CLIENT', 'NO-EVICT', 'on'), 'OK');
    assert.match(String(await call('CLIENT', 'LIST')), /name=me/);
    assert.equal(await call('CLIENT', 'SETINFO', 'LIB-NAME', 'test'), 'OK');
    assert.match(JSON.stringify(await call('CLIENT', 'BOGUS')), /unknown subcommand 'BOGUS'/);
    const count = (await call('COMMAND', 'COUNT')) as number;
    assert.ok(count >= 25);
    const all = (await call('COMMAND')) as unknown[][];
    assert.equal(all.length, count);
    assert.deepEqual(all.find((x) => x[0] === 'get')!.slice(0, 6), ['get', 2, ['readonly', 'fast'], 1, 1, 1]);
    assert.deepEqual(((await call('COMMAND', 'INFO', 'set', 'nope')) as unknown[])[1], null);
    assert.equal(((await call('COMMAND', 'DOCS', 'get')) as unknown[])[0], 'get'); // a map, flattened in RESP2
    assert.equal(((await call('COMMAND', 'INFO')) as unknown[]).length, count, 'no names: every command (Redis 7)');
    assert.deepEqual(await call('COMMAND', 'LIST', 'FILTERBY', 'PATTERN', 'mse?'), ['mset']);
    const reads = (await call('COMMAND', 'LIST', 'FILTERBY', 'ACLCAT', 'read')) as string[];
    assert.ok(reads.includes('get') && !reads.includes('set'), reads.join(' '));
    assert.deepEqual(await call('COMMAND', 'LIST', 'FILTERBY', 'MODULE', 'x'), []);
    assert.deepEqual(await call('COMMAND', 'LIST', 'FILTERBY', 'SIZE', '1'), { error: 'ERR syntax error' });
    assert.deepEqual(await call('CONFIG', 'GET', 'save'), ['save', '']);
    assert.deepEqual(await call('CONFIG', 'GET', 'appendonly'), ['appendonly', 'no']);
    assert.deepEqual(await call('CONFIG', 'GET', 'nothing*'), []);
    assert.match(JSON.stringify(await call('CONFIG', 'SET', 'save', '')), /not supported/);
    const info = String(await call('INFO'));
    assert.match(info, /# Server\r\nredis_version:/);
    assert.match(info, /role:master/);
    assert.doesNotMatch(String(await call('INFO', 'server')), /# Replication/);
    assert.match(String(await call('INFO', 'kvs')), /replica_id:1/);
    assert.equal(((await call('TIME')) as string[]).length, 2);
    assert.match(JSON.stringify(await call('AUTH', 'x')), /without any password configured/);
    // As Redis with no password set: the default user takes any password, other users do not exist
    // (clients configured with a username and password must connect).
    assert.equal(await call('AUTH', 'default', 'secret'), 'OK');
    assert.match(JSON.stringify(await call('AUTH', 'alice', 'secret')), /WRONGPASS/);
    assert.match(JSON.stringify(await call('HELLO', '2', 'AUTH', 'alice', 'secret')), /WRONGPASS/);
    assert.equal(((await call('HELLO', '2', 'AUTH', 'default', 'x')) as unknown[]).length > 0, true);
  });

  it('unknown commands and wrong arity get Redis wording', async () => {
    assert.deepEqual(await call('FOO', 'bar', 'baz'), { error: "ERR unknown command 'FOO', with args beginning with: 'bar' 'baz' " });
    assert.deepEqual(await call('GET'), { error: "ERR wrong number of arguments for 'get' command" });
    assert.deepEqual(await call('GET', 'a', 'b'), { error: "ERR wrong number of arguments for 'get' command" });
  });

  it('MULTI is refused, and nothing up to EXEC or DISCARD runs: a transaction is never half applied', async () => {
    // A client library's transaction: MULTI, the commands and EXEC in one pipeline.
    c.raw(Buffer.concat([['SET', 'before', '1'], ['MULTI'], ['SET', 'tx-a', '1'], ['INCR', 'tx-n'], ['GET', 'before'], ['EXEC'], ['SET', 'after', '1']].map(encodeCommand)));
    const replies = [];
    for (let i = 0; i < 7; i++) replies.push(plain(await c.reply()));
    assert.equal(replies[0], 'OK');
    assert.match((replies[1] as { error: string }).error, /^ERR MULTI is not supported/);
    for (const r of replies.slice(2, 5)) assert.match((r as { error: string }).error, /^ERR command not run: it follows MULTI/);
    assert.match((replies[5] as { error: string }).error, /^EXECABORT/);
    assert.equal(replies[6], 'OK', 'after EXEC commands run again');
    assert.deepEqual([...exec.data.keys()].sort(), ['after', 'before']);
    // DISCARD ends the refusal too; QUIT still closes.
    assert.match(((await call('MULTI')) as { error: string }).error, /^ERR MULTI/);
    assert.match(((await call('SET', 'tx-b', '1')) as { error: string }).error, /^ERR command not run/);
    assert.equal(await call('DISCARD'), 'OK');
    assert.equal(await call('SET', 'tx-c', '1'), 'OK');
    assert.equal(exec.data.has('tx-b'), false);
    assert.deepEqual(await call('EXEC'), { error: 'ERR EXEC without MULTI' });
  });

  it('RESET answers +RESET and restores the connection: RESP2, no name, out of MULTI', async () => {
    // Redis 6.2+ has RESET; it was an unknown command here (found by an outside tester).
    assert.equal((await c.call('HELLO', '3', 'SETNAME', 'before-reset')).type, 'map');
    assert.match(((await call('MULTI')) as { error: string }).error, /^ERR MULTI/);
    assert.deepEqual(await c.call('RESET'), { type: 'simple', value: 'RESET' });
    assert.equal((await c.call('HELLO')).type, 'array', 'RESP2 again: a map is a flat array');
    assert.equal(await call('CLIENT', 'GETNAME'), null);
    assert.equal(await call('SET', 'after-reset', '1'), 'OK', 'no longer refusing after MULTI');
    assert.equal(exec.data.has('after-reset'), true);
  });

  it('HELLO 3 switches to RESP3 (nulls, maps) and HELLO 2 back', async () => {
    const hello = await c.call('HELLO', '3', 'SETNAME', 'r3');
    assert.equal(hello.type, 'map');
    assert.equal((plain(hello) as Record<string, unknown>).proto, 3);
    assert.deepEqual(await c.call('GET', 'nope'), { type: 'null' });
    assert.equal((await c.call('CONFIG', 'GET', 'save')).type, 'map');
    assert.equal(await call('CLIENT', 'GETNAME'), 'r3');
    assert.equal((await c.call('HELLO', '2')).type, 'array');
    assert.deepEqual(await call('HELLO', '4'), { error: 'NOPROTO unsupported protocol version' });
    assert.deepEqual(await call('HELLO', 'abc'), { error: 'ERR Protocol version is not an integer or out of range' });
    assert.deepEqual(await call('HELLO', '3', 'SETNAME'), { error: "ERR Syntax error in HELLO option 'SETNAME'" });
  });

  it('QUIT answers OK, then closes; commands after it are not run', async () => {
    c.raw(Buffer.concat([encodeCommand(['SET', 'q', '1']), encodeCommand(['QUIT']), encodeCommand(['SET', 'after', '1'])]));
    assert.equal(plain(await c.reply()), 'OK');
    assert.equal(plain(await c.reply()), 'OK');
    await c.whenClosed();
    assert.equal(exec.data.has('after'), false);
  });

  it('answers a pipeline in order, and a read sees the writes before it', async () => {
    const cmds: string[][] = [];
    for (let i = 0; i < 100; i++) cmds.push(['INCR', 'ctr'], ['GET', 'ctr'], ['PING']);
    const replies = (await c.pipeline(cmds)).map(plain);
    for (let i = 0; i < 100; i++) assert.deepEqual(replies.slice(3 * i, 3 * i + 3), [i + 1, String(i + 1), 'PONG']);
  });

  it('sends a run of queued blind writes as one batch (group commit), each answered', async () => {
    const cmds = Array.from({ length: 500 }, (_, i) => ['SET', `g:${i % 50}`, String(i)]);
    cmds.push(['MSET', 'g:0', 'last', 'm', '1']);
    const replies = (await c.pipeline(cmds)).map(plain);
    assert.ok(replies.every((r) => r === 'OK'));
    assert.equal(exec.data.get('g:0')?.toString(), 'last');
    assert.equal(exec.data.get('g:49')?.toString(), '499');
    const writes = exec.seen.filter((r) => r.op === 'batch' || r.op === 'put');
    assert.ok(writes.length < 50, `${writes.length} write requests for 501 commands`);
  });

  it('folds concurrent INCRs of one key from many connections into few CAS rounds, none lost', async () => {
    exec.delayMs = 5; // like a Raft round: INCRs arriving meanwhile wait for the next CAS together
    const clients = await Promise.all(Array.from({ length: 20 }, () => RespClient.connect(port)));
    try {
      const results = await Promise.all(clients.flatMap((cl) => Array.from({ length: 10 }, () => cl.call('INCR', 'hot'))));
      const values = results.map(plain) as number[];
      assert.deepEqual([...values].sort((a, b) => a - b), Array.from({ length: 200 }, (_, i) => i + 1));
      assert.equal(exec.data.get('hot')?.toString(), '200');
      assert.ok(exec.seen.filter((r) => r.op === 'cas').length < 200);
    } finally {
      exec.delayMs = 0;
      for (const cl of clients) cl.close();
    }
  });

  it('maps executor errors onto Redis error codes', async () => {
    exec.failWith = { kind: 'error', error: { code: 'TIMEOUT', message: 'request timed out (it may still apply)' } };
    assert.deepEqual(await call('SET', 'a', 'b'), { error: 'TIMEOUT request timed out (it may still apply)' });
    exec.failWith = { kind: 'error', error: { code: 'UNAVAILABLE', message: 'no quorum' } };
    assert.deepEqual(await call('GET', 'a'), { error: 'TRYAGAIN no quorum' });
    exec.failWith = { kind: 'error', error: { code: 'NOT_LEADER', message: 'not the leader', leaderId: 0, leaderAddr: '' } };
    assert.match(JSON.stringify(await call('INCR', 'a')), /TRYAGAIN no leader available/);
    exec.failWith = { kind: 'error', error: { code: 'WRONG_GROUP', message: 'moved', epoch: 4 } };
    assert.match(JSON.stringify(await call('DEL', 'a')), /TRYAGAIN key moved to another group \(epoch 4\)/);
    exec.failWith = null;
    assert.equal(await call('PING'), 'PONG');
  });

  it('counts every command for metrics, by name and outcome', async () => {
    ctx.observed.length = 0;
    await call('SET', 'm', '1');
    await call('NOPE');
    await call('INCR', 'm');
    assert.deepEqual(ctx.observed.map((o) => `${o.op}:${o.outcome}`), ['set:ok', 'unknown:ERR', 'incr:ok']);
  });
});

describe('RESP door: a client that never reads', () => {
  it('is dropped once its unsent replies pass the hard bound', async () => {
    const door = await startRespDoor(fakeContext(new MemoryExecutor(), { maxKeyBytes: 4026, maxValueBytes: 1 << 20 }), {
      listen: '127.0.0.1:0',
      maxPipeline: 64,
      maxPendingWriteBytes: 64 << 10,
      maxUnsentBytes: 1 << 20,
    });
    try {
      const c = await RespClient.connect(Number(door.address.split(':')[1]));
      await c.call('SET', 'big', 'v'.repeat(256 << 10));
      c.socket.pause();
      // 64 replies of 256 KiB run at once: 16 MiB, past the kernel's socket buffers and the 1 MiB bound.
      const cmd = encodeCommand(['GET', 'big']);
      c.raw(Buffer.concat(Array.from({ length: 64 }, () => cmd)));
      await c.whenClosed();
    } finally {
      await door.close();
    }
  });
});

describe('RESP door: bad input', () => {
  let door: Door;
  let port: number;

  before(async () => {
    door = await startRespDoor(fakeContext(new MemoryExecutor(), { maxKeyBytes: 4026, maxValueBytes: 1024 }), { listen: '127.0.0.1:0', maxPipeline: 64 });
    port = Number(door.address.split(':')[1]);
  });
  after(async () => {
    await door.close();
  });

  async function errorAndClose(bytes: string | Buffer): Promise<string> {
    const c = await RespClient.connect(port);
    const reply = c.reply();
    c.raw(bytes);
    const v = plain(await reply) as { error: string };
    await c.whenClosed();
    return v.error;
  }

  it('answers protocol errors, then closes that connection only', async () => {
    const bystander = await RespClient.connect(port);
    assert.match(await errorAndClose('*1\r\n$-5\r\n'), /^ERR Protocol error: invalid bulk length/);
    assert.match(await errorAndClose('*2\r\n*1\r\n$1\r\na\r\n'), /^ERR Protocol error: expected '\$', got '\*'/);
    assert.match(await errorAndClose('*1\r\n$4\r\nPINGxx'), /expected CRLF after a bulk string/);
    assert.match(await errorAndClose(`*1\r\n$${1024 + (1 << 20) + 1}\r\n`), /invalid bulk length/); // the value limit + 1 MiB
    assert.match(await errorAndClose('*99999999\r\n'), /invalid multibulk length/);
    assert.match(await errorAndClose(`${'x'.repeat(70 * 1024)}`), /too big inline request/);
    assert.match(await errorAndClose('SET "unterminated\r\n'), /unbalanced quotes/);
    assert.equal(plain(await bystander.call('PING')), 'PONG');
    bystander.close();
  });

  it('closes a connection after QUIT or a protocol error even while its client keeps sending', async () => {
    // Redis closes it; half-closed, the door read and discarded the client's bytes for as long as
    // the client kept the connection open.
    const graceful = await startRespDoor(fakeContext(new MemoryExecutor(), { maxKeyBytes: 64, maxValueBytes: 1024 }), { listen: '127.0.0.1:0', closeGraceMs: 200 });
    try {
      for (const first of ['QUIT\r\n', '*1\r\n$x\r\n']) {
        const socket = net.connect({ port: Number(graceful.address.split(':')[1]), host: '127.0.0.1', allowHalfOpen: true });
        let got = '';
        socket.on('data', (b: Buffer) => (got += b.toString()));
        socket.on('error', () => {}); // EPIPE / ECONNRESET: the door closed, as expected
        const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
        socket.write(first);
        const pinger = setInterval(() => socket.writable && socket.write('PING\r\n'), 20);
        const cutOff = await Promise.race([closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 3000))]);
        clearInterval(pinger);
        socket.destroy();
        assert.ok(cutOff, `still open 3 s after ${JSON.stringify(first)}`);
        assert.match(got, first === 'QUIT\r\n' ? /^\+OK\r\n$/ : /^-ERR Protocol error/, 'the reply came first');
      }
    } finally {
      await graceful.close();
    }
  });

  it('after QUIT with a full pipeline, still reads: a client that half-closes is closed at once', async () => {
    // The session stayed "busy" (socket paused) when its last flush wrote the QUIT reply from a
    // full pipeline: the door never saw the client's FIN, held the connection for closeGraceMs, and
    // what the client sent meanwhile stayed unread in the kernel, so the close was a reset that can
    // throw away replies not yet delivered to a slow reader.
    const ctx = fakeContext(new MemoryExecutor(), { maxKeyBytes: 64, maxValueBytes: 1024 });
    let doorClosed!: () => void;
    const closedByDoor = new Promise<void>((r) => (doorClosed = r));
    ctx.connectionClosed = () => doorClosed();
    const quick = await startRespDoor(ctx, { listen: '127.0.0.1:0', closeGraceMs: 20_000, maxPipeline: 4 });
    try {
      const socket = net.connect({ port: Number(quick.address.split(':')[1]), host: '127.0.0.1', allowHalfOpen: true });
      let got = '';
      socket.on('data', (b: Buffer) => (got += b.toString()));
      socket.on('error', () => {});
      // Three blind writes (one batch: answered at once) and QUIT fill the pipeline of 4; once
      // the replies are in, the client sends a last command (ignored after QUIT) and its FIN.
      socket.write('SET a 1\r\nSET b 2\r\nSET c 3\r\nQUIT\r\n');
      await new Promise<void>((r) => socket.once('end', () => r()));
      socket.end('PING\r\n');
      const inTime = await Promise.race([closedByDoor.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000).unref())]);
      socket.destroy();
      assert.ok(inTime, 'the door still held the connection 5 s after the client closed its side');
      assert.equal(got, '+OK\r\n'.repeat(4));
    } finally {
      await quick.close();
    }
  });

  it('answers replies before a protocol error first', async () => {
    const c = await RespClient.connect(port);
    const first = c.reply();
    const second = c.reply();
    c.raw(Buffer.concat([encodeCommand(['PING']), Buffer.from('*1\r\n$x\r\n')]));
    assert.equal(plain(await first), 'PONG');
    assert.match((plain(await second) as { error: string }).error, /Protocol error/);
    await c.whenClosed();
  });

  it('a value between the value limit and the bulk limit gets a clean error, and the connection lives', async () => {
    const c = await RespClient.connect(port);
    assert.deepEqual(plain(await c.call('SET', 'k', 'x'.repeat(5000))), { error: 'ERR value of 5000 bytes exceeds the limit of 1024 bytes' });
    assert.equal(plain(await c.call('PING')), 'PONG');
    c.close();
  });

  it('a client that pipelines without reading is paused, and gets every reply once it reads', async () => {
    const c = await RespClient.connect(port);
    await c.call('SET', 'big', 'v'.repeat(1000));
    c.socket.pause();
    const n = 20_000;
    const replies = Array.from({ length: n }, () => c.reply());
    const cmd = encodeCommand(['GET', 'big']);
    c.raw(Buffer.concat(Array.from({ length: n }, () => cmd)));
    c.socket.resume();
    const got = await Promise.all(replies);
    assert.ok(got.every((v) => v.type === 'bulk' && v.value.length === 1000));
    c.close();
  });

  it('survives random and mutated input on many connections', async () => {
    const rng = new Prng(7);
    const seeds = [encodeCommand(['SET', 'k', 'v']), encodeCommand(['MGET', 'a', 'b']), Buffer.from('PING\r\n'), encodeCommand(['SCAN', '0', 'MATCH', '[a-'])];
    for (let i = 0; i < 300; i++) {
      let input: Buffer;
      if (rng.int(4) === 0) input = rng.bytes(1 + rng.int(200));
      else {
        input = Buffer.from(rng.pick(seeds));
        for (let m = 0; m < 1 + rng.int(3); m++) input[rng.int(input.length)] = rng.pick([...Buffer.from('*$\r\n-0123456789'), rng.int(256)]);
      }
      const s = net.connect({ host: '127.0.0.1', port });
      s.on('error', () => {});
      s.on('data', () => {});
      await new Promise<void>((resolve) => {
        s.on('close', () => resolve());
        s.on('connect', () => s.end(input)); // half-close: the server ends the connection too
      });
      if (i % 50 === 0) {
        const probe = await RespClient.connect(port);
        assert.equal(plain(await probe.call('PING')), 'PONG');
        probe.close();
      }
    }
    const probe = await RespClient.connect(port);
    assert.equal(plain(await probe.call('PING')), 'PONG');
    probe.close();
  });
});
