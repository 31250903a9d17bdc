// The load generator's in-place encoders must produce exactly what the real codecs produce
// (native: src/wire's encodeRequest), and its reply scanners must survive any chunking.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FrameScanner, getFrameBytes, putFrameBytes, writeGet, writePut } from '../../bench/drivers/native-codec.ts';
import { REPLY_ERROR, REPLY_NIL, REPLY_OK, ReplyScanner, RespTemplates, writeGetCmd, writeSet } from '../../bench/drivers/resp-codec.ts';
import { KeySpace } from '../../bench/load/keys.ts';
import { encodeRequest, encodeResponse } from '../../src/wire/client-codec.ts';

const space = new KeySpace(100, 16, 100);
const key = (i: number): Buffer => space.keyViews()[i]!;
const val = (i: number): Buffer => space.valueViews()[i % KeySpace.VALUE_VARIANTS]!;

describe('native in-place codec', () => {
  it('writes PUT and GET frames identical to encodeRequest', () => {
    const out = Buffer.alloc(1024);
    const clientId = 0x89abcdef_00000007n;
    const seq = 2 ** 40 + 5;
    let end = writePut(out, 3, 77, 0x89abcdef, 7, seq, space.keys, space.keyOffset(5), 16, space.values, space.valueOffset(5), 100);
    assert.deepEqual(out.subarray(3, end), encodeRequest(77, { op: 'put', clientId, seq, key: key(5), value: val(5) }));
    assert.equal(end - 3, putFrameBytes(16, 100));
    end = writeGet(out, 0, 0xfffffffe, false, space.keys, space.keyOffset(9), 16);
    assert.deepEqual(out.subarray(0, end), encodeRequest(0xfffffffe, { op: 'get', key: key(9), consistency: 'linearizable' }));
    assert.equal(end, getFrameBytes(16));
    end = writeGet(out, 0, 1, true, space.keys, space.keyOffset(9), 16);
    assert.deepEqual(out.subarray(0, end), encodeRequest(1, { op: 'get', key: key(9), consistency: 'stale' }));
  });

  it('scans response frames split at every byte boundary', () => {
    const stream = Buffer.concat([
      encodeResponse(1, { kind: 'ok' }),
      encodeResponse(2, { kind: 'value', value: val(1) }),
      encodeResponse(3, { kind: 'value', value: null }),
      encodeResponse(4, { kind: 'error', error: { code: 'TIMEOUT', message: 'slow' } }),
    ]);
    for (let cut = 0; cut <= stream.length; cut++) {
      const seen: string[] = [];
      const sc = new FrameScanner();
      const sink = { frame: (type: number, id: number, b: Buffer, s: number, e: number) => void seen.push(`${type}:${id}:${e - s}:${e > s ? b[s] : ''}`) };
      sc.push(stream.subarray(0, cut), sink);
      sc.push(stream.subarray(cut), sink);
      assert.deepEqual(seen, ['128:1:0:', '129:2:105:1', '129:3:1:0', '255:4:8:0']);
    }
  });
});

describe('RESP in-place codec', () => {
  it('encodes SET and GET as RESP arrays of bulk strings', () => {
    const t = new RespTemplates(16, 100);
    const out = Buffer.alloc(512);
    let end = writeSet(t, out, 0, space.keys, space.keyOffset(3), space.values, space.valueOffset(3));
    assert.equal(out.toString('latin1', 0, end), `*3\r\n$3\r\nSET\r\n$16\r\n${key(3).toString()}\r\n$100\r\n${val(3).toString('latin1')}\r\n`);
    assert.equal(end, t.setBytes);
    end = writeGetCmd(t, out, 0, space.keys, space.keyOffset(4));
    assert.equal(out.toString('latin1', 0, end), `*2\r\n$3\r\nGET\r\n$16\r\n${key(4).toString()}\r\n`);
    assert.equal(end, t.getBytes);
  });

  it('classifies replies split at every byte boundary', () => {
    const stream = Buffer.from('+OK\r\n$5\r\nhe\r\no\r\n$-1\r\n-ERR no quorum\r\n:12\r\n$0\r\n\r\n');
    for (let cut = 0; cut <= stream.length; cut++) {
      const seen: string[] = [];
      const sc = new ReplyScanner();
      const sink = { reply: (kind: number, text: string) => void seen.push(`${kind}${text}`) };
      sc.push(stream.subarray(0, cut), sink);
      sc.push(stream.subarray(cut), sink);
      assert.deepEqual(seen, [`${REPLY_OK}`, `${REPLY_OK}`, `${REPLY_NIL}`, `${REPLY_ERROR}ERR no quorum`, `${REPLY_OK}`, `${REPLY_OK}`], `cut at ${cut}`);
    }
  });
});
