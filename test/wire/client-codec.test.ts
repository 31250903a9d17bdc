import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decodeRequest,
  decodeResponse,
  encodeRequest,
  encodeResponse,
  requestBodySize,
  requestFrameType,
  responseFrameType,
} from '../../src/wire/client-codec.ts';
import type { Request, Response } from '../../src/wire/client-types.ts';
import { BadRequestError } from '../../src/wire/errors.ts';
import { decodeForward, encodeForward } from '../../src/wire/forward.ts';
import { type Frame, FrameDecoder, HEADER_BYTES } from '../../src/wire/frame.ts';
import { FrameType } from '../../src/wire/frame-types.ts';
import { decodeHello, encodeHello, HELLO_MAGIC, PROTOCOL_VERSION } from '../../src/wire/hello.ts';
import { bytes, norm, sampleRequests, sampleResponses } from './helpers.ts';

function frameOf(buf: Buffer): Frame {
  const d = new FrameDecoder();
  d.push(buf);
  const f = d.read();
  assert.ok(f !== null);
  return f;
}

const isBad = (e: unknown) => e instanceof BadRequestError;
const w = { clientId: 1n, seq: 1 };

describe('client requests', () => {
  it('round-trip every op, with request ids kept', () => {
    let id = 0;
    for (const req of sampleRequests()) {
      const buf = encodeRequest(++id, req);
      assert.equal(buf.length, HEADER_BYTES + requestBodySize(req));
      const f = frameOf(buf);
      assert.equal(f.type, requestFrameType(req));
      assert.ok(f.type >= 0x01 && f.type <= 0x3f);
      assert.equal(f.requestId, id);
      assert.deepEqual(norm(decodeRequest(f.type, f.body)), norm(req), req.op);
    }
  });

  it('decode keys and values as views into the body', () => {
    const f = frameOf(encodeRequest(1, { op: 'put', ...w, key: bytes('key'), value: bytes('value') }));
    const r = decodeRequest(f.type, f.body);
    assert.ok(r.op === 'put');
    assert.equal(r.key.buffer, f.body.buffer);
    assert.equal(r.value.buffer, f.body.buffer);
  });

  it('put writes clientId and seq at body offset 0', () => {
    const f = frameOf(encodeRequest(1, { op: 'put', clientId: 0xaabbn, seq: 7, key: bytes('k'), value: bytes('v') }));
    assert.equal(Buffer.from(f.body.subarray(0, 16)).toString('hex'), '000000000000aabb0000000000000007');
  });

  it('reject every truncation and any trailing byte', () => {
    for (const req of sampleRequests()) {
      const f = frameOf(encodeRequest(1, req));
      if (f.body.length < 5000) {
        for (let cut = 0; cut < f.body.length; cut++) {
          assert.throws(() => decodeRequest(f.type, f.body.subarray(0, cut)), isBad, `${req.op} cut ${cut}`);
        }
      }
      assert.throws(() => decodeRequest(f.type, Buffer.concat([f.body, Buffer.from([0])])), isBad, req.op);
    }
  });

  it('reject unknown ops, bad flags and impossible counts', () => {
    assert.throws(() => decodeRequest(0x09, new Uint8Array(0)), isBad);
    assert.throws(() => decodeRequest(0x00, new Uint8Array(0)), isBad);
    assert.throws(() => decodeRequest(FrameType.Ok, new Uint8Array(0)), isBad);
    assert.throws(() => decodeRequest(FrameType.Get, Uint8Array.from([2, 0, 0])), isBad); // consistency 2
    const cas = Buffer.from(frameOf(encodeRequest(1, { op: 'cas', ...w, key: bytes('k'), expected: null, value: null })).body);
    cas[19] = 3; // "expected present" flag
    assert.throws(() => decodeRequest(FrameType.Cas, cas), isBad);
    const batch = Buffer.from(frameOf(encodeRequest(1, { op: 'batch', ...w, ops: [{ op: 'delete', key: bytes('k') }] })).body);
    batch[20] = 9; // op kind
    assert.throws(() => decodeRequest(FrameType.Batch, batch), isBad);
    batch[20] = 2;
    batch.writeUInt32BE(0xffff_ffff, 16); // op count the body cannot hold
    assert.throws(() => decodeRequest(FrameType.Batch, batch), isBad);
    batch.writeUInt32BE(0, 16); // empty batch
    assert.throws(() => decodeRequest(FrameType.Batch, batch.subarray(0, 20)), isBad);
    const put = Buffer.from(frameOf(encodeRequest(1, { op: 'put', ...w, key: bytes('k'), value: bytes('v') })).body);
    put.writeUInt32BE(0x0040_0000, 8); // seq hi half beyond 2^53
    assert.throws(() => decodeRequest(FrameType.Put, put), isBad);
  });

  it('refuse a batch over maxBatchOps from its count (TOO_LARGE), and decode it without the option (log replay)', () => {
    const ops = Array.from({ length: 11 }, () => ({ op: 'delete' as const, key: bytes('k') }));
    const f = frameOf(encodeRequest(1, { op: 'batch', ...w, ops }));
    assert.throws(
      () => decodeRequest(FrameType.Batch, f.body, { maxBatchOps: 10 }),
      (e: unknown) => e instanceof BadRequestError && e.code === 'TOO_LARGE' && /batch of 11 operations exceeds the limit of 10/.test(e.message),
    );
    assert.equal((decodeRequest(FrameType.Batch, f.body, { maxBatchOps: 11 }) as { ops: unknown[] }).ops.length, 11);
    assert.equal((decodeRequest(FrameType.Batch, f.body) as { ops: unknown[] }).ops.length, 11);
  });

  it('refuse to encode what the format cannot carry', () => {
    assert.throws(() => encodeRequest(1, { op: 'get', key: new Uint8Array(0x10000), consistency: 'stale' }), RangeError);
    assert.throws(() => encodeRequest(1, { op: 'batch', ...w, ops: [] }), RangeError);
    assert.throws(() => encodeRequest(1, { op: 'put', clientId: -1n, seq: 1, key: bytes('k'), value: bytes('v') }), RangeError);
    assert.throws(() => encodeRequest(1, { op: 'scan', start: bytes('a'), end: null, limit: -1, consistency: 'stale' }), RangeError);
  });
});

describe('client responses', () => {
  it('round-trip every kind and error code', () => {
    for (const res of sampleResponses()) {
      const f = frameOf(encodeResponse(0xfeed, res));
      assert.equal(f.type, responseFrameType(res));
      assert.ok(f.type >= 0x80);
      assert.equal(f.requestId, 0xfeed);
      assert.deepEqual(norm(decodeResponse(f.type, f.body)), norm(res));
    }
  });

  it('reject truncation, trailing bytes, unknown codes and invalid UTF-8', () => {
    for (const res of sampleResponses()) {
      const f = frameOf(encodeResponse(1, res));
      if (f.body.length < 5000) {
        for (let cut = 0; cut < f.body.length; cut++) {
          assert.throws(() => decodeResponse(f.type, f.body.subarray(0, cut)), isBad, `${res.kind} cut ${cut}`);
        }
      }
      // STATUS_INFO may end with one flags byte (StatusInfo.blank): two are too many, a flag unknown.
      const tails = res.kind === 'status' ? [[0, 0], [2]] : [[0]];
      for (const tail of tails) assert.throws(() => decodeResponse(f.type, Buffer.concat([f.body, Buffer.from(tail)])), isBad, `${res.kind} + ${tail}`);
    }
    assert.throws(() => decodeResponse(FrameType.Error, Uint8Array.from([0, 99, 0, 0])), isBad);
    assert.throws(() => decodeResponse(FrameType.Error, Uint8Array.from([0, 4, 0, 2, 0xc3, 0x28])), isBad);
    assert.throws(() => decodeResponse(0x85, new Uint8Array(0)), isBad);
    assert.throws(() => decodeResponse(FrameType.Get, new Uint8Array(0)), isBad);
    const status = sampleResponses().find((r) => r.kind === 'status')!;
    const sb = Buffer.from(frameOf(encodeResponse(1, status)).body);
    sb[8] = 4; // role
    assert.throws(() => decodeResponse(FrameType.StatusInfo, sb), isBad);
  });

  it("STATUS asks for the flags byte and STATUS_INFO carries blank only then; the old formats read as before", () => {
    // The request: an empty body (every version) or one byte 01 (asks for the flags byte).
    const plain = frameOf(encodeRequest(1, { op: 'status' }));
    assert.equal(plain.body.length, 0);
    assert.deepEqual(decodeRequest(FrameType.Status, plain.body), { op: 'status' });
    const asking = frameOf(encodeRequest(1, { op: 'status', flags: true }));
    assert.deepEqual([...asking.body], [1]);
    assert.deepEqual(decodeRequest(FrameType.Status, asking.body), { op: 'status', flags: true });
    assert.throws(() => decodeRequest(FrameType.Status, Uint8Array.from([2])), isBad);
    assert.throws(() => decodeRequest(FrameType.Status, Uint8Array.from([1, 0])), isBad);
    // The answer: the old layout (no flags) decodes without blank; with the byte, blank or not.
    const info = { replicaId: 3, groupId: 1, role: 'follower', term: 4, leaderId: 1, leaderAddr: '127.0.0.1:7001', commitIndex: 12, appliedIndex: 0, epoch: 0 } as const;
    const old = frameOf(encodeResponse(1, { kind: 'status', info }));
    assert.equal('blank' in (decodeResponse(old.type, old.body) as { info: object }).info, false);
    for (const blank of [true, false]) {
      const f = frameOf(encodeResponse(1, { kind: 'status', info: { ...info, blank } }));
      assert.equal(f.body.length, old.body.length + 1);
      assert.deepEqual(f.body.subarray(0, old.body.length), old.body, 'the old layout, then the flags byte');
      assert.deepEqual(decodeResponse(f.type, f.body), { kind: 'status', info: { ...info, blank } });
    }
  });

  it('a response answers "absent" and "empty value" differently', () => {
    const absent: Response = { kind: 'value', value: null };
    const empty: Response = { kind: 'value', value: new Uint8Array(0) };
    assert.notEqual(encodeResponse(1, absent).toString('hex'), encodeResponse(1, empty).toString('hex'));
  });
});

describe('replica link frames', () => {
  it('hello round-trips and checks its magic', () => {
    const h = { version: PROTOCOL_VERSION, replicaId: 3, groupId: 7 };
    const f = frameOf(encodeHello(h));
    assert.equal(f.type, FrameType.Hello);
    assert.deepEqual(decodeHello(f.body), h);
    const bad = Buffer.from(f.body);
    bad.writeUInt32BE(HELLO_MAGIC ^ 1, 0);
    assert.throws(() => decodeHello(bad), isBad);
    assert.throws(() => decodeHello(f.body.subarray(0, 13)), isBad);
    assert.throws(() => encodeHello({ ...h, replicaId: 0 }), RangeError);
  });

  it('a version 3 hello (an acceptor answer) may name its process; one without it decodes without it', () => {
    const h = { version: 3, replicaId: 3, groupId: 7, process: 0x1f_ffff_ffff_fffe };
    const buf = encodeHello(h);
    assert.equal(buf.length, HEADER_BYTES + 14 + 8);
    const f = frameOf(buf);
    assert.deepEqual(decodeHello(f.body), h);
    const plain = decodeHello(frameOf(encodeHello({ version: 3, replicaId: 3, groupId: 7 })).body);
    assert.deepEqual(plain, { version: 3, replicaId: 3, groupId: 7 });
    assert.equal('process' in plain, false);
    assert.deepEqual(decodeHello(frameOf(encodeHello({ ...h, process: 0 })).body), { ...h, process: 0 });
    // A process id that is not a whole u64, or one beyond 2^53.
    assert.throws(() => decodeHello(f.body.subarray(0, 14 + 4)), isBad);
    const huge = Buffer.from(f.body);
    huge.writeUInt32BE(0xffff_ffff, 14);
    assert.throws(() => decodeHello(huge), isBad);
    assert.throws(() => encodeHello({ ...h, process: -1 }), RangeError);
  });

  it('a version 1 or 2 hello cannot carry a process', () => {
    for (const version of [1, 2]) {
      assert.throws(() => encodeHello({ version, replicaId: 3, groupId: 7, process: 9 }), RangeError);
      // The same bytes as a version 3 hello with a process, relabelled: a trailing u64 is malformed.
      const body = Buffer.from(frameOf(encodeHello({ version: 3, replicaId: 3, groupId: 7, process: 9 })).body);
      body.writeUInt16BE(version, 4);
      assert.throws(() => decodeHello(body), isBad);
    }
  });

  it('forward carries a client request untouched', () => {
    const req: Request = { op: 'put', ...w, key: bytes('k'), value: bytes('v') };
    const inner = frameOf(encodeRequest(99, req));
    const f = frameOf(encodeForward(5, { type: inner.type, hops: 1, body: inner.body }));
    assert.equal(f.type, FrameType.Forward);
    assert.equal(f.requestId, 5);
    const fw = decodeForward(f.body);
    assert.equal(fw.hops, 1);
    assert.deepEqual(norm(decodeRequest(fw.type, fw.body)), norm(req));
    assert.throws(() => decodeForward(Uint8Array.from([FrameType.RaftAppend, 0])), isBad);
    assert.throws(() => decodeForward(Uint8Array.from([FrameType.Put])), isBad);
    assert.throws(() => encodeForward(1, { type: FrameType.Ok, hops: 0, body: new Uint8Array(0) }), RangeError);
  });
});
