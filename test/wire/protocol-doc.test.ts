// docs/protocol.md publishes hex test vectors for other client writers. This test keeps them honest:
// every vector in the document must decode to the value in vectors.ts, and re-encoding that value
// must give the document's bytes exactly; every vector in vectors.ts must appear in the document.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { FrameDecoder } from '../../src/wire/frame.ts';
import { norm } from './helpers.ts';
import { formatHex, parseHex, vectors } from './vectors.ts';

const doc = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8');

function docVectors(): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const re = /<!-- vector: ([\w-]+) -->\n(?:.*\n)*?```hex\n([\s\S]*?)```/g;
  for (const m of doc.matchAll(re)) {
    assert.ok(!out.has(m[1]!), `vector ${m[1]} appears twice`);
    out.set(m[1]!, parseHex(m[2]!));
  }
  return out;
}

describe('docs/protocol.md test vectors', () => {
  const inDoc = docVectors();

  it('lists exactly the vectors the tests know', () => {
    assert.deepEqual([...inDoc.keys()].sort(), vectors.map((v) => v.name).sort());
  });

  for (const v of vectors) {
    it(`${v.name}: the document's bytes decode to the value and the encoder produces them`, () => {
      const bytes = inDoc.get(v.name);
      assert.ok(bytes !== undefined, `${v.name} missing from the document`);
      const d = new FrameDecoder();
      d.push(bytes);
      const f = d.read();
      assert.ok(f !== null, 'not a whole frame');
      assert.equal(d.bufferedBytes, 0, 'bytes after the frame');
      assert.deepEqual(norm(v.decode(f)), norm(v.value));
      assert.equal(formatHex(v.frame), formatHex(bytes), 'encoder output differs from the document');
    });
  }
});
