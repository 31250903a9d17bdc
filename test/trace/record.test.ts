import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatIPv6, parseBatch, RECORD_HEADER_BYTES, RecordFormatError } from '../../src/trace/record.ts';
import { capsFromMask, parseCapEff } from '../../src/trace/caps.ts';

interface RawRecord {
  ts: bigint;
  seq: number;
  ack?: number;
  payloadLength: number;
  payload: Uint8Array;
  sport: number;
  dport: number;
  family: 4 | 6;
  egress: boolean;
  flags: number;
  saddr: number[];
  daddr: number[];
  version?: number;
}

/** Lays a record out as struct kvs_trace_rec (ebpf/trace_abi.h), little-endian. */
function encodeRecord(r: RawRecord): Uint8Array {
  const out = new Uint8Array(RECORD_HEADER_BYTES + r.payload.length);
  const v = new DataView(out.buffer);
  v.setBigUint64(0, r.ts, true);
  v.setUint32(8, r.seq, true);
  v.setUint32(12, r.ack ?? 0, true);
  v.setUint32(16, r.payloadLength, true);
  v.setUint16(20, r.payload.length, true);
  v.setUint16(22, r.sport, true);
  v.setUint16(24, r.dport, true);
  v.setUint8(26, r.family);
  v.setUint8(27, r.egress ? 1 : 0);
  v.setUint8(28, r.flags);
  v.setUint8(29, r.version ?? 1);
  out.set(r.saddr, 32);
  out.set(r.daddr, 48);
  out.set(r.payload, RECORD_HEADER_BYTES);
  return out;
}

const v4: RawRecord = {
  ts: 123_456_789_012_345n,
  seq: 0xfffffff0,
  payloadLength: 5,
  payload: Uint8Array.of(1, 2, 3, 4, 5),
  sport: 23401,
  dport: 45678,
  family: 4,
  egress: true,
  flags: 0x18,
  saddr: [127, 0, 0, 1],
  daddr: [10, 1, 2, 3],
};

describe('record parsing', () => {
  it('parses a batch of back-to-back records', () => {
    const v6: RawRecord = {
      ...v4,
      family: 6,
      egress: false,
      payload: Uint8Array.of(9, 9),
      payloadLength: 1448, // cut by the snap length
      saddr: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
      daddr: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34],
    };
    const empty: RawRecord = { ...v4, payload: new Uint8Array(0), payloadLength: 0, flags: 0x02 };
    const batch = Buffer.concat([encodeRecord(v4), encodeRecord(v6), encodeRecord(empty)]);
    const [a, b, c] = parseBatch(batch);
    assert.deepEqual(
      { ...a, payload: [...(a?.payload ?? [])] },
      {
        ts: v4.ts,
        src: { addr: '127.0.0.1', port: 23401 },
        dst: { addr: '10.1.2.3', port: 45678 },
        seq: 0xfffffff0,
        flags: 0x18,
        payload: [1, 2, 3, 4, 5],
        direction: 'egress',
      },
    );
    assert.equal(b?.src.addr, '::1');
    assert.equal(b?.dst.addr, '2001:db8::1234');
    assert.equal(b?.payloadLength, 1448);
    assert.equal(b?.direction, 'ingress');
    assert.equal(c?.payload.length, 0);
    assert.equal(c?.flags, 0x02);
  });

  it('rejects truncated records and unknown versions', () => {
    const good = encodeRecord(v4);
    assert.throws(() => parseBatch(good.subarray(0, 40)), RecordFormatError);
    assert.throws(() => parseBatch(good.subarray(0, good.length - 1)), RecordFormatError);
    assert.throws(() => parseBatch(encodeRecord({ ...v4, version: 2 })), RecordFormatError);
    assert.deepEqual(parseBatch(new Uint8Array(0)), []);
  });

  it('formats IPv6 addresses in RFC 5952 form', () => {
    const a = (...groups: number[]) => Uint8Array.from(groups.flatMap((g) => [g >> 8, g & 0xff]));
    assert.equal(formatIPv6(a(0, 0, 0, 0, 0, 0, 0, 0)), '::');
    assert.equal(formatIPv6(a(0x2001, 0xdb8, 0, 0, 1, 0, 0, 1)), '2001:db8::1:0:0:1');
    assert.equal(formatIPv6(a(0x2001, 0xdb8, 0, 1, 1, 1, 1, 1)), '2001:db8:0:1:1:1:1:1');
    assert.equal(formatIPv6(a(0xfe80, 0, 0, 0, 0xabcd, 0, 0, 0)), 'fe80::abcd:0:0:0');
  });
});

describe('capabilities', () => {
  it('reads CapEff and the bits the capture needs', () => {
    const mask = parseCapEff('Name:\tnode\nCapInh:\t0000000000000000\nCapEff:\t000001fffeffffff\n');
    assert.equal(mask, 0x1fffeffffffn);
    assert.deepEqual(capsFromMask(mask ?? 0n), { bpf: true, netAdmin: true, sysAdmin: true });
    assert.deepEqual(capsFromMask(1n << 12n), { bpf: false, netAdmin: true, sysAdmin: false });
    assert.deepEqual(capsFromMask((1n << 39n) | (1n << 12n)), { bpf: true, netAdmin: true, sysAdmin: false });
    assert.equal(parseCapEff('Name: x\n'), undefined);
  });
});
