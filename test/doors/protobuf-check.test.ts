// The strict protobuf check in front of the gRPC door's decoder: valid encodings pass, truncated
// or mistyped ones fail with a message, and random or mutated bytes only ever fail with
// ProtobufError; whatever passes, protobufjs decodes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as protoLoader from '@grpc/proto-loader';
import { KV_PROTO_PATH } from '../../src/doors/grpc-door.ts';
import { ProtobufError, checkMessage, type MessageDescriptor } from '../../src/doors/protobuf-check.ts';
import { Prng } from './prng.ts';

const pkg = protoLoader.loadSync(KV_PROTO_PATH, { keepCase: true, defaults: true, oneofs: true });
const service = pkg['protos.KV'] as protoLoader.ServiceDefinition;
const lookup = (name: string): MessageDescriptor | undefined => (pkg[`protos.${name}`] as protoLoader.MessageTypeDefinition<object, object> | undefined)?.type as MessageDescriptor;

function check(method: string, bytes: number[] | Buffer): string {
  const m = service[method]!;
  try {
    checkMessage(Buffer.from(bytes), m.requestType.type as MessageDescriptor, lookup);
    return 'ok';
  } catch (e) {
    assert.ok(e instanceof ProtobufError, String(e));
    return e.message;
  }
}

const samples: [string, object][] = [
  ['Get', { key: 'user:1' }],
  ['Put', { key: 'k', value: 'héllo' }],
  ['Delete', { key: '' }],
  ['Scan', { start: Buffer.from('a'), end: Buffer.from('b'), limit: 10, stale: true }],
  ['CompareAndSwap', { key: Buffer.from([0, 1]), expected: Buffer.alloc(0), value: Buffer.from('v') }],
  ['Batch', { ops: [{ put: { key: Buffer.from('a'), value: Buffer.from('1') } }, { delete: Buffer.from('b') }] }],
];

describe('protobuf strict check', () => {
  it('passes what the schema encodes', () => {
    for (const [method, msg] of samples) assert.equal(check(method, service[method]!.requestSerialize(msg)), 'ok', method);
  });

  it('says what is wrong with malformed messages', () => {
    assert.match(check('Get', [0x0a, 0xff, 0xff, 0xff, 0x0f]), /key: length 33554431 runs past the end/);
    assert.match(check('Get', [0x0a, 0x05, 0x61]), /key: length 5 runs past the end of the message \(1 bytes left\)/);
    assert.match(check('Get', [0x0a]), /key length: varint cut short/);
    assert.match(check('Get', [0x0d, 1, 2, 3, 4]), /key: wire type 5, the schema says 2/);
    assert.match(check('Get', [0x0a, 0x02, 0xff, 0xfe]), /key: string is not valid UTF-8/);
    assert.match(check('Get', [0x2b]), /field 5: wire type 3 is not allowed/);
    assert.match(check('Get', [0x00, 0x01]), /field number 0/);
    assert.match(check('Scan', [0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), /varint longer than 10 bytes/);
    assert.match(check('Batch', [0x0a, 0x04, 0x0a, 0x02, 0x0a, 0x05]), /ops\.put\.key: length 5 runs past/);
  });

  it('refuses tags and lengths that protobufjs would read differently (found by an outside review)', () => {
    // A 6-byte length of 1: read here as key "X"; protobufjs reads 5 bytes, skips the 6th and
    // decodes key "Z". A 5-byte tag above 2^32: an unknown field here, field 1 (key) there.
    assert.match(check('Put', [0x0a, 0x81, 0x80, 0x80, 0x80, 0x80, 0x00, 0x58, 0x12, 0x02, 0x61, 0x5a]), /key length: varint longer than 5 bytes/);
    assert.match(check('Put', [0x8a, 0x80, 0x80, 0x80, 0x10, 0x01, 0x5a]), /tag at byte 0: varint of more than 32 bits/);
    assert.match(check('Put', [0x82, 0x80, 0x80, 0x80, 0x10, 0x00]), /tag at byte 0: varint of more than 32 bits/);
    // The largest field number (2^29 - 1) in a canonical 5-byte tag is still an unknown field.
    assert.equal(check('Put', [0xf8, 0xff, 0xff, 0xff, 0x0f, 0x00]), 'ok');
  });

  it('refuses 6 to 9-byte varints in 32-bit and bool fields, which protobufjs misreads (found in review, 2026-12-07)', () => {
    // limit = 1 as a 7-byte varint, then start "c": protobufjs reads 5 bytes, skips 5 and swallows start.
    const sevenByteLimit = [0x18, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x0a, 0x01, 0x63];
    assert.match(check('Scan', sevenByteLimit), /limit: a 7-byte varint for a 32-bit field/);
    assert.match(check('Scan', [0x20, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]), /stale: a 8-byte varint/);
    // What protobufjs reads right stays accepted: short forms, and the 10-byte form of a negative value.
    assert.equal(check('Scan', [0x18, 0x81, 0x80, 0x80, 0x80, 0x00]), 'ok');
    assert.equal(check('Scan', [0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), 'ok');
    const decoded = service['Scan']!.requestDeserialize(Buffer.from([0x18, 0x81, 0x80, 0x80, 0x80, 0x00, 0x0a, 0x01, 0x63])) as { start: Buffer; limit: number };
    assert.equal(decoded.limit, 1);
    assert.equal(decoded.start.toString(), 'c');
  });

  it('allows unknown fields, as proto3 does', () => {
    assert.equal(check('Get', [0x0a, 0x01, 0x61, 0x78, 0x05, 0x81, 0x01, 1, 2, 3, 4, 5, 6, 7, 8]), 'ok');
  });

  it('bounds nesting depth', () => {
    const node: MessageDescriptor = { field: [{ name: 'child', number: 1, type: 'TYPE_MESSAGE', typeName: 'Node', label: 'LABEL_OPTIONAL' }] };
    const nest = (depth: number): Buffer => {
      let b = Buffer.alloc(0);
      for (let i = 0; i < depth; i++) b = Buffer.concat([Buffer.from([0x0a, b.length]), b]);
      return b;
    };
    assert.doesNotThrow(() => checkMessage(nest(20), node, () => node));
    assert.throws(() => checkMessage(nest(40), node, () => node), /nested deeper than 32/);
  });

  it('refuses more than 10,000 elements of a repeated field, and 100,000 fields in all, as too large (found by fuzzing, 2026-12-07)', () => {
    // Counted before protobufjs decodes: 4 MiB of empty BatchOps (2M) took seconds to decode.
    const emptyOps = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => [0x0a, 0x00]).flat());
    assert.equal(check('Batch', emptyOps(10_000)), 'ok');
    const tooLarge = (bytes: Buffer): ProtobufError => {
      try {
        checkMessage(bytes, service.Batch!.requestType.type as MessageDescriptor, lookup);
      } catch (e) {
        assert.ok(e instanceof ProtobufError);
        return e;
      }
      assert.fail('passed the check');
    };
    const ops = tooLarge(emptyOps(2_000_000));
    assert.equal(ops.message, 'ops: more than 10000 elements');
    assert.equal(ops.tooLarge, true);
    // A field that is not repeated, sent over and over (protobufjs decodes every copy).
    const keys = Buffer.from(Array.from({ length: 100_001 }, () => [0x0a, 0x00]).flat());
    const m = service.Get!;
    assert.throws(
      () => checkMessage(keys, m.requestType.type as MessageDescriptor, lookup),
      (e: unknown) => e instanceof ProtobufError && e.tooLarge && e.message === 'more than 100000 fields in one request',
    );
    assert.equal(check('Get', keys.subarray(0, 200_000)), 'ok');
  });

  it('under fuzzing fails only with ProtobufError, and what passes decodes', () => {
    const rng = new Prng(11);
    const methods = samples.map(([m]) => m);
    for (let i = 0; i < 30_000; i++) {
      const method = rng.pick(methods);
      let bytes: Buffer;
      if (rng.int(3) === 0) bytes = rng.bytes(rng.int(40));
      else {
        const [m, msg] = rng.pick(samples);
        bytes = Buffer.from(service[m]!.requestSerialize(msg));
        for (let k = 0; k < 1 + rng.int(3); k++) {
          const at = rng.int(bytes.length + 1);
          const op = rng.int(3);
          if (op === 0 && bytes.length > 0) bytes[Math.min(at, bytes.length - 1)] = rng.int(256);
          else if (op === 1) bytes = bytes.subarray(0, at);
          else bytes = Buffer.concat([bytes.subarray(0, at), rng.bytes(1 + rng.int(4)), bytes.subarray(at)]);
        }
      }
      if (check(method, bytes) === 'ok') service[method]!.requestDeserialize(bytes);
    }
  });
});
