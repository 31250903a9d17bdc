// A strict check of protobuf wire bytes against a message descriptor, run before protobufjs decodes
// a gRPC request. protobufjs is lenient with hostile input: it clamps a string whose length runs
// past the message, reads a field whatever its wire type, and accepts invalid UTF-8 in strings, so
// "garbage in" would become a wrong key, not an error. This walks the bytes once and says what is
// wrong: truncation, impossible lengths, wire types that do not match the schema, deprecated
// groups, bad UTF-8, nesting past a bound. Unknown fields are allowed (proto3 skips them).

export interface FieldDescriptor {
  name: string;
  number: number;
  type: string;
  typeName: string;
  label: string;
}

export interface MessageDescriptor {
  field: FieldDescriptor[];
}

/** Finds a message descriptor by the (package-relative) type name a field refers to. */
export type DescriptorLookup = (typeName: string) => MessageDescriptor | undefined;

export class ProtobufError extends Error {
  override readonly name = 'ProtobufError';
  constructor(
    message: string,
    /** Well formed so far, but more fields than a request may have: RESOURCE_EXHAUSTED, not INVALID_ARGUMENT. */
    readonly tooLarge = false,
  ) {
    super(message);
  }
}

/**
 * Elements of one repeated field (a Batch's ops: MAX_BATCH_OPS), and fields in a whole request (a
 * Batch of 10,000 puts has 40,000). Counted before protobufjs builds an object per field: 4 MiB of
 * empty BatchOps is 2M of them, which took this check 1.7 s and protobufjs 7-15 s of the replica's
 * event loop, only for the handler to refuse the batch (found by fuzzing, 2026-12-07).
 */
export const MAX_REPEATED = 10_000;
export const MAX_FIELDS = 100_000;

const WIRE_TYPE: Record<string, number> = {
  TYPE_INT32: 0, TYPE_INT64: 0, TYPE_UINT32: 0, TYPE_UINT64: 0, TYPE_SINT32: 0, TYPE_SINT64: 0, TYPE_BOOL: 0, TYPE_ENUM: 0,
  TYPE_FIXED64: 1, TYPE_SFIXED64: 1, TYPE_DOUBLE: 1,
  TYPE_STRING: 2, TYPE_BYTES: 2, TYPE_MESSAGE: 2,
  TYPE_FIXED32: 5, TYPE_SFIXED32: 5, TYPE_FLOAT: 5,
};

/** Fields protobufjs reads as a 32-bit varint (uint32, then a cast). */
const VARINT32_TYPES: ReadonlySet<string> = new Set(['TYPE_INT32', 'TYPE_UINT32', 'TYPE_SINT32', 'TYPE_BOOL', 'TYPE_ENUM']);

const MAX_DEPTH = 32;
const utf8 = new TextDecoder('utf-8', { fatal: true });

export function checkMessage(bytes: Uint8Array, desc: MessageDescriptor, lookup: DescriptorLookup): void {
  walk(bytes, 0, bytes.length, desc, lookup, 0, '', { fields: 0 });
}

/** Fields by number, built once per descriptor (a walk used to build one per nested message). */
const FIELDS = new WeakMap<MessageDescriptor, Map<number, FieldDescriptor>>();

function fieldsOf(desc: MessageDescriptor): Map<number, FieldDescriptor> {
  let m = FIELDS.get(desc);
  if (!m) FIELDS.set(desc, (m = new Map(desc.field.map((f) => [f.number, f]))));
  return m;
}

function walk(b: Uint8Array, start: number, end: number, desc: MessageDescriptor, lookup: DescriptorLookup, depth: number, path: string, count: { fields: number }): void {
  if (depth > MAX_DEPTH) throw new ProtobufError(`messages nested deeper than ${MAX_DEPTH}`);
  const byNumber = fieldsOf(desc);
  /** Elements seen of each repeated field of this message. */
  let repeated: Map<number, number> | undefined;
  let pos = start;
  while (pos < end) {
    const tagAt = pos;
    const [tag, afterTag] = varint32(b, pos, end, `tag at byte ${tagAt}`);
    pos = afterTag;
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    if (field === 0) throw new ProtobufError(`field number 0 at byte ${tagAt}`);
    const f = byNumber.get(field);
    const where = `${path}${f ? f.name : `field ${field}`}`;
    if (++count.fields > MAX_FIELDS) throw new ProtobufError(`more than ${MAX_FIELDS} fields in one request`, true);
    if (f?.label === 'LABEL_REPEATED') {
      const n = ((repeated ??= new Map()).get(field) ?? 0) + 1;
      if (n > MAX_REPEATED) throw new ProtobufError(`${where}: more than ${MAX_REPEATED} elements`, true);
      repeated.set(field, n);
    }
    const expected = f ? WIRE_TYPE[f.type] : undefined;
    const packed = f?.label === 'LABEL_REPEATED' && wire === 2 && expected !== 2;
    if (expected !== undefined && wire !== expected && !packed) {
      throw new ProtobufError(`${where}: wire type ${wire}, the schema says ${expected}`);
    }
    switch (wire) {
      case 0: {
        const after = varint(b, pos, end, 10, where)[1];
        // protobufjs reads a 32-bit field (or bool, enum) from its first 5 bytes and then skips 5
        // more unread, as if it were 10 bytes long (a negative int32): a 6 to 9-byte varint there
        // would swallow the next field's bytes (found in review, 2026-12-07).
        const bytes = after - pos;
        if (f && VARINT32_TYPES.has(f.type) && bytes > 5 && bytes < 10) throw new ProtobufError(`${where}: a ${bytes}-byte varint for a 32-bit field (5 bytes, or 10 for a negative value)`);
        pos = after;
        break;
      }
      case 1:
      case 5: {
        const n = wire === 1 ? 8 : 4;
        if (end - pos < n) throw new ProtobufError(`${where}: ${n}-byte value cut short`);
        pos += n;
        break;
      }
      case 2: {
        const [len, after] = varint32(b, pos, end, `${where} length`);
        if (len > end - after) throw new ProtobufError(`${where}: length ${len} runs past the end of the message (${end - after} bytes left)`);
        const stop = after + len;
        if (f?.type === 'TYPE_STRING') {
          try {
            utf8.decode(b.subarray(after, stop));
          } catch {
            throw new ProtobufError(`${where}: string is not valid UTF-8`);
          }
        } else if (f?.type === 'TYPE_MESSAGE') {
          const inner = lookup(f.typeName);
          if (inner) walk(b, after, stop, inner, lookup, depth + 1, `${where}.`, count);
        }
        pos = stop;
        break;
      }
      default:
        throw new ProtobufError(`${where}: wire type ${wire} is not allowed (groups are deprecated; 6 and 7 do not exist)`);
    }
  }
}

/**
 * A tag or a length: protobufjs reads these as 32-bit varints, keeping the low 32 bits of a bigger
 * value and skipping past bytes 6 to 10 unread. Any such varint would be read one way here and
 * another way there (a request that passes as key "X" decoded as key "Z"), so it is refused.
 */
function varint32(b: Uint8Array, pos: number, end: number, what: string): [number, number] {
  const [v, after] = varint(b, pos, end, 5, what);
  if (v >= 2 ** 32) throw new ProtobufError(`${what}: varint of more than 32 bits`);
  return [v, after];
}

/** A varint of at most `maxBytes` bytes at pos, as a JS number (exact up to 2^53). */
function varint(b: Uint8Array, pos: number, end: number, maxBytes: number, what: string): [number, number] {
  let v = 0;
  let mul = 1;
  for (let i = 0; i < maxBytes; i++) {
    if (pos >= end) throw new ProtobufError(`${what}: varint cut short`);
    const byte = b[pos++]!;
    v += (byte & 0x7f) * mul;
    mul *= 128;
    if ((byte & 0x80) === 0) return [v, pos];
  }
  throw new ProtobufError(`${what}: varint longer than ${maxBytes} bytes`);
}
