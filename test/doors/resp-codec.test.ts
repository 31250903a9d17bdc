// The RESP codec: request decoding (multibulk, inline, limits, errors) at every split point,
// reply encoding in RESP2 and RESP3 read back by the reply decoder, and fuzzing of both decoders
// with random and mutated input: they either decode, wait for more, or throw RespProtocolError.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RespDecoder, RespProtocolError, encodeReply, resp, splitInline, type RespValue } from '../../src/doors/resp-codec.ts';
import { RespReplyDecoder } from '../../src/doors/resp-reply-decoder.ts';
import { Prng } from './prng.ts';

function command(...args: (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = Buffer.isBuffer(a) ? a : Buffer.from(a);
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

function decodeAll(d: RespDecoder, ...chunks: Uint8Array[]): string[][] {
  const out: string[][] = [];
  for (const c of chunks) {
    d.push(c);
    for (let cmd = d.next(); cmd !== null; cmd = d.next()) out.push(cmd.map((a) => a.toString('latin1')));
  }
  return out;
}

function protocolError(input: string | Buffer, limits = {}): string {
  const d = new RespDecoder(limits);
  d.push(Buffer.isBuffer(input) ? input : Buffer.from(input, 'latin1'));
  try {
    while (d.next() !== null);
  } catch (e) {
    assert.ok(e instanceof RespProtocolError, String(e));
    return e.message;
  }
  return 'no error';
}

describe('RESP request decoder', () => {
  it('decodes pipelined multibulk commands split at every byte', () => {
    const stream = Buffer.concat([command('SET', 'k', 'v'), command('GET', 'k'), command('MSET', 'a', '', 'b', Buffer.from([0, 13, 10, 255]))]);
    const expected = [['SET', 'k', 'v'], ['GET', 'k'], ['MSET', 'a', '', 'b', '\u0000\r\n\u00ff']];
    for (let i = 0; i <= stream.length; i++) {
      assert.deepEqual(decodeAll(new RespDecoder(), stream.subarray(0, i), stream.subarray(i)), expected, `split at ${i}`);
    }
    const d = new RespDecoder();
    assert.deepEqual(decodeAll(d, ...[...stream].map((b) => Buffer.from([b]))), expected, 'one byte at a time');
    assert.equal(d.bufferedBytes, 0);
  });

  it('keeps arguments valid after the chunk they came in is reused', () => {
    const d = new RespDecoder();
    const chunk = command('SET', 'key', 'value');
    d.push(chunk);
    const cmd = d.next()!;
    chunk.fill(0);
    assert.deepEqual(cmd.map(String), ['SET', 'key', 'value']);
  });

  it('decodes inline commands with quoting as Redis does', () => {
    assert.deepEqual(decodeAll(new RespDecoder(), Buffer.from('PING\r\nset k "a b\\x41\\n" \'it\\\'s\'\n\r\n  \n')), [
      ['PING'],
      ['set', 'k', 'a bA\n', "it's"],
    ]);
    assert.throws(() => splitInline(Buffer.from('set "abc')), /unbalanced quotes/);
    assert.throws(() => splitInline(Buffer.from('set "a"b')), /unbalanced quotes/);
  });

  it('skips empty multibulk commands', () => {
    assert.deepEqual(decodeAll(new RespDecoder(), Buffer.from('*0\r\n*-1\r\n'), command('PING')), [['PING']]);
  });

  it('rejects malformed framing with Redis-like messages', () => {
    assert.match(protocolError('*x\r\n'), /invalid multibulk length/);
    assert.match(protocolError('*1\r\n*1\r\n$1\r\na\r\n'), /expected '\$', got '\*'/); // nesting
    assert.match(protocolError('*1\r\n:5\r\n'), /expected '\$', got ':'/);
    assert.match(protocolError('*1\r\n$-1\r\n'), /invalid bulk length/);
    assert.match(protocolError('*1\r\n$abc\r\n'), /invalid bulk length/);
    assert.match(protocolError('*1\r\n$3\r\nabcXY'), /expected CRLF after a bulk string/);
    assert.match(protocolError('*1\n$3\r\nabc\r\n'), /expected CRLF/);
    assert.match(protocolError(`*1\r\n$${'9'.repeat(40)}`), /invalid bulk length/);
    assert.match(protocolError(`*${'1'.repeat(40)}`), /invalid multibulk length/);
  });

  it('bounds bulk length, argument count, command size and inline length before buffering', () => {
    const limits = { maxBulkBytes: 100, maxArgs: 4, maxCommandBytes: 150, maxInlineBytes: 32 };
    assert.match(protocolError('*1\r\n$101\r\n', limits), /invalid bulk length/); // refused from the header alone
    assert.match(protocolError('*5\r\n', limits), /invalid multibulk length/);
    assert.match(protocolError(command('SET', 'a'.repeat(80), 'b'.repeat(80)), limits), /command larger than 150 bytes/);
    assert.match(protocolError(`PING ${'x'.repeat(40)}`, limits), /too big inline request/);
    assert.match(protocolError(`PING ${'x'.repeat(40)}\r\n`, limits), /too big inline request/);
    assert.equal(protocolError(`*1\r\n$100\r\n${'x'.repeat(100)}\r\n`, limits), 'no error');
  });

  it('stays broken after a protocol error and holds no input', () => {
    const d = new RespDecoder();
    d.push(Buffer.from('*1\r\n$zz\r\n'));
    assert.throws(() => d.next(), RespProtocolError);
    d.push(command('PING'));
    assert.throws(() => d.next(), RespProtocolError);
    assert.equal(d.bufferedBytes, 0);
  });
});

describe('RESP replies', () => {
  const values: RespValue[] = [
    resp.ok,
    resp.simple('PONG'),
    resp.error('ERR bad\r\nthing'),
    resp.int(42),
    resp.int(-(2n ** 63n)),
    resp.bulk(Buffer.from([0, 13, 10, 1])),
    resp.bulk(''),
    resp.null,
    resp.array([resp.int(1), resp.array([resp.bulk('x'), resp.null]), resp.array([])]),
    resp.map([[resp.bulk('a'), resp.int(1)]]),
    resp.verbatim('line one\r\nline two'),
    { type: 'bool', value: true },
    { type: 'double', value: 1.5 },
  ];

  it('encodes RESP2 as Redis does', () => {
    assert.equal(encodeReply(resp.ok).toString(), '+OK\r\n');
    assert.equal(encodeReply(resp.null).toString(), '$-1\r\n');
    assert.equal(encodeReply(resp.error('ERR a\nb')).toString(), '-ERR a b\r\n');
    assert.equal(encodeReply(resp.map([[resp.bulk('a'), resp.int(1)]])).toString(), '*2\r\n$1\r\na\r\n:1\r\n');
    assert.equal(encodeReply(resp.verbatim('hi')).toString(), '$2\r\nhi\r\n');
  });

  it('encodes RESP3 nulls, maps and verbatim strings', () => {
    assert.equal(encodeReply(resp.null, 3).toString(), '_\r\n');
    assert.equal(encodeReply(resp.map([[resp.bulk('a'), resp.int(1)]]), 3).toString(), '%1\r\n$1\r\na\r\n:1\r\n');
    assert.equal(encodeReply(resp.verbatim('hi'), 3).toString(), '=6\r\ntxt:hi\r\n');
  });

  it('round-trips through the reply decoder in both versions, split anywhere', () => {
    for (const version of [2, 3] as const) {
      const stream = Buffer.concat(values.map((v) => encodeReply(v, version)));
      for (let i = 0; i <= stream.length; i += 3) {
        const d = new RespReplyDecoder();
        const got: RespValue[] = [];
        for (const part of [stream.subarray(0, i), stream.subarray(i)]) {
          d.push(part);
          for (let v = d.next(); v !== undefined; v = d.next()) got.push(v);
        }
        assert.equal(got.length, values.length, `RESP${version} split at ${i}`);
        if (version === 3) {
          assert.deepEqual(got[7], { type: 'null' });
          assert.equal(got[9]!.type, 'map');
          assert.equal(got[10]!.type, 'verbatim');
        }
      }
    }
  });

  it('bounds reply nesting and lengths', () => {
    const deep = new RespReplyDecoder({ maxDepth: 8 });
    deep.push(Buffer.from('*1\r\n'.repeat(9) + ':1\r\n'));
    assert.throws(() => deep.next(), /nesting deeper than 8/);
    const ok = new RespReplyDecoder({ maxDepth: 8 });
    ok.push(Buffer.from('*1\r\n'.repeat(8) + ':1\r\n'));
    assert.ok(ok.next());
    const big = new RespReplyDecoder({ maxBulkBytes: 10 });
    big.push(Buffer.from('$11\r\n'));
    assert.throws(() => big.next(), /out of bounds/);
    const huge = new RespReplyDecoder();
    huge.push(Buffer.from('*999999999999\r\n'));
    assert.throws(() => huge.next(), /out of bounds/);
  });
});

describe('RESP decoders under fuzzing', () => {
  const seeds = [command('SET', 'key', 'value'), command('MGET', 'a', 'b', 'c'), Buffer.from('PING\r\n'), command('HELLO', '3')];
  const special = [...'*$:+-_#,(!=%~>|\r\n0123456789-"\'\\ '].map((c) => c.charCodeAt(0));

  function mutate(rng: Prng, input: Buffer): Buffer {
    const b = Buffer.from(input);
    const n = 1 + rng.int(4);
    for (let i = 0; i < n; i++) {
      const at = rng.int(Math.max(1, b.length));
      switch (rng.int(4)) {
        case 0:
          b[at] = rng.int(256);
          break;
        case 1:
          b[at] = special[rng.int(special.length)]!;
          break;
        case 2:
          return Buffer.concat([b.subarray(0, at), Buffer.from(String(rng.int(2) ? rng.int(1e9) : -rng.int(10))), b.subarray(at)]);
        default:
          return b.subarray(0, at);
      }
    }
    return b;
  }

  it('the request decoder decodes, waits or throws RespProtocolError, never anything else', () => {
    const rng = new Prng(1);
    const limits = { maxBulkBytes: 1 << 16, maxArgs: 64, maxCommandBytes: 1 << 17, maxInlineBytes: 1024 };
    for (let i = 0; i < 20_000; i++) {
      const base = seeds[rng.int(seeds.length)]!;
      const input = rng.int(5) === 0 ? rng.bytes(rng.int(64)) : Buffer.concat([mutate(rng, base), rng.int(2) ? command('PING') : Buffer.alloc(0)]);
      const d = new RespDecoder(limits);
      try {
        const cut = rng.int(input.length + 1);
        d.push(input.subarray(0, cut));
        while (d.next() !== null);
        d.push(input.subarray(cut));
        for (let c = d.next(); c !== null; c = d.next()) {
          assert.ok(c.length >= 1 && c.length <= limits.maxArgs);
          for (const a of c) assert.ok(Buffer.isBuffer(a) && a.length <= limits.maxBulkBytes);
        }
        assert.ok(d.bufferedBytes <= input.length);
      } catch (e) {
        if (!(e instanceof RespProtocolError)) throw new Error(`input ${input.toString('hex')}: ${String(e)}`);
      }
    }
  });

  it('the reply decoder decodes, waits or throws RespProtocolError, never anything else', () => {
    const rng = new Prng(2);
    const stream = Buffer.concat([
      encodeReply(resp.array([resp.int(1), resp.bulk('abc'), resp.map([[resp.bulk('k'), resp.null]])]), 3),
      encodeReply(resp.verbatim('x'), 3),
      Buffer.from('|1\r\n+a\r\n+b\r\n:7\r\n#t\r\n,1.5\r\n(12345\r\n!3\r\nERR\r\n~1\r\n_\r\n>1\r\n+p\r\n'),
    ]);
    for (let i = 0; i < 20_000; i++) {
      const input = rng.int(5) === 0 ? rng.bytes(rng.int(64)) : mutate(rng, stream);
      const d = new RespReplyDecoder({ maxDepth: 16, maxBulkBytes: 1 << 16, maxAggregateLength: 1 << 16 });
      try {
        d.push(input);
        while (d.next() !== undefined);
      } catch (e) {
        if (!(e instanceof RespProtocolError)) throw new Error(`input ${input.toString('hex')}: ${String(e)}`);
      }
    }
  });
});
