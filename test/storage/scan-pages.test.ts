// Scan pages are bounded by bytes as well as by count: a page of large values must fit one frame,
// or it is never delivered. Before the bound, a gRPC Scan (1,000 pairs a page) over 200 KB values
// failed with UNAVAILABLE after 5 s, every time: each answer exceeded the frame limit and was lost.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { callLocal, stubRouter } from '../support/stub-router.ts';
import type { Command } from '../../src/storage/index.ts';
import { DEFAULT_MAX_FRAME_BYTES, SCAN_PAGE_BYTES, encodeResponse, type KeyValue, type Request } from '../../src/wire/index.ts';
import { entries, hs, openFresh, ready, tempDir } from './helpers.ts';

const dir = tempDir('scan-pages');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const VALUE_BYTES = 200_000;
const KEYS = 60;
const keyOf = (i: number): Buffer => Buffer.from(`sc/${String(i).padStart(4, '0')}`);

async function storeWithBigValues(): Promise<ReturnType<typeof openFresh>> {
  const s = openFresh(dir);
  await s.persist(ready({ entries: entries(1, 1, 1), hardState: hs(1, 1) }));
  const cmd: Command = { type: 'ops', ops: Array.from({ length: KEYS }, (_, i) => ({ type: 'put' as const, key: keyOf(i), value: Buffer.alloc(VALUE_BYTES, i) })) };
  await s.apply(1, [cmd]);
  return s;
}

test('the store stops a page before maxBytes of keys and values, always with one pair, and resumes where it stopped', async () => {
  const s = await storeWithBigValues();
  const page = s.scan(Buffer.from('sc/'), Buffer.from('sc0'), 1000, 1_000_000);
  assert.equal(page.items.length, 4, '5 pairs would be over 1,000,000 bytes');
  assert.deepEqual(page.more, keyOf(4));
  const one = s.scan(Buffer.from('sc/'), null, 1000, 1);
  assert.equal(one.items.length, 1, 'a pair larger than the bound still comes, alone');
  const seen: Buffer[] = [];
  for (let from: Uint8Array | null = Buffer.from('sc/'); from !== null; ) {
    const p = s.scan(from, Buffer.from('sc0'), 1000, 1_000_000);
    seen.push(...p.items.map((kv) => kv.key as Buffer));
    from = p.more;
  }
  assert.deepEqual(seen, Array.from({ length: KEYS }, (_, i) => keyOf(i)));
  // An end that is present but empty is the smallest key: nothing is below it (it is not "no end").
  assert.deepEqual(s.scan(Buffer.from('sc/'), new Uint8Array(0), 1000), { items: [], more: null });
  assert.deepEqual(s.scan(Buffer.from('sc/0005'), Buffer.from('sc/0005'), 1000), { items: [], more: null });
  await s.close();
});

test("a replica's scan answers fit a frame whatever the values, and walking `more` returns every pair", async () => {
  const s = openFresh(dir); // reopened: the same keys
  const router = stubRouter({ replica: { isLeader: true, leader: 1, visibleBarrier: () => Promise.resolve() }, reader: s });
  const got: KeyValue[] = [];
  for (let from: Uint8Array | null = Buffer.from('sc/'); from !== null; ) {
    const req: Request = { op: 'scan', start: from, end: Buffer.from('sc0'), limit: 0, consistency: 'stale' };
    const res = await callLocal(router, req);
    assert.equal(res.kind, 'scan');
    if (res.kind !== 'scan') return;
    assert.ok(encodeResponse(1, res).length <= DEFAULT_MAX_FRAME_BYTES, 'the page fits a frame');
    assert.ok(res.items.length < KEYS, 'not all 12 MB in one page');
    let bytes = 0;
    for (const kv of res.items.slice(0, -1)) bytes += kv.key.length + kv.value.length;
    assert.ok(bytes <= SCAN_PAGE_BYTES);
    got.push(...res.items);
    from = res.more;
  }
  assert.deepEqual(got.map((kv) => Buffer.from(kv.key)), Array.from({ length: KEYS }, (_, i) => keyOf(i)));
  assert.ok(got.every((kv, i) => kv.value.length === VALUE_BYTES && kv.value[0] === i));
  await s.close();
});
