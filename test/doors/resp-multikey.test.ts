// Multi-key and folded RESP commands, in-process against the in-memory executor: faults found in
// review (2026-12-07). A command naming many keys works on a bounded number at a time; a DEL that
// fails after deleting some keys says so instead of "retry"; an APPEND too large fails alone, not
// with the updates folded into its compare-and-set; a MATCH prefix longer than any key matches
// nothing.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Door } from '../../src/doors/door-context.ts';
import { startRespDoor } from '../../src/doors/resp-door.ts';
import { KEYS_IN_FLIGHT } from '../../src/doors/resp-kv-commands.ts';
import type { RawRequest } from '../../src/router/router.ts';
import type { Request, Response } from '../../src/wire/index.ts';
import { MemoryExecutor, fakeContext } from './memory-executor.ts';
import { RespClient, plain } from './resp-client.ts';

/** Counts requests in flight at once. */
class CountingExecutor extends MemoryExecutor {
  inFlight = 0;
  maxInFlight = 0;
  /** A CAS of this key is answered UNAVAILABLE (not applied). */
  refuseCasOf: string | undefined;
  /** A CAS of this key is applied, and answered TIMEOUT (its outcome unknown to the door). */
  timeoutCasOf: string | undefined;
  override async execute(req: Request, raw: RawRequest): Promise<Response> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (req.op === 'cas' && Buffer.from(req.key).toString() === this.refuseCasOf) return { kind: 'error', error: { code: 'UNAVAILABLE', message: 'configuration being loaded' } };
      const res = await super.execute(req, raw);
      if (req.op === 'cas' && Buffer.from(req.key).toString() === this.timeoutCasOf) return { kind: 'error', error: { code: 'TIMEOUT', message: 'request timed out (it may still apply)' } };
      return res;
    } finally {
      this.inFlight--;
    }
  }
}

describe('RESP door: multi-key commands', () => {
  let mem: CountingExecutor;
  let door: Door;
  let client: RespClient;

  before(async () => {
    mem = new CountingExecutor();
    mem.delayMs = 1;
    door = await startRespDoor(fakeContext(mem, { maxKeyBytes: 64, maxValueBytes: 1024 }), { listen: '127.0.0.1:0' });
    client = await RespClient.connect(Number(door.address.split(':')[1]));
  });
  after(async () => {
    client.close();
    await door.close();
  });

  it('MGET, EXISTS and DEL of thousands of keys keep a bounded number of reads in flight, and answer in order', async () => {
    const keys = Array.from({ length: 3000 }, (_, i) => `k${i}`);
    for (const k of keys.filter((_, i) => i % 3 === 0)) mem.data.set(k, Buffer.from(`v-${k}`));
    mem.maxInFlight = 0;
    const values = plain(await client.call('MGET', ...keys)) as (Buffer | null)[];
    assert.deepEqual(
      values.map((v) => v?.toString() ?? null),
      keys.map((k, i) => (i % 3 === 0 ? `v-${k}` : null)),
    );
    assert.equal(plain(await client.call('EXISTS', ...keys)), 1000);
    assert.equal(plain(await client.call('DEL', ...keys)), 1000);
    assert.ok(mem.maxInFlight <= KEYS_IN_FLIGHT, `at most ${KEYS_IN_FLIGHT} in flight, saw ${mem.maxInFlight}`);
    assert.equal(mem.data.size, 0);
  });

  it('a DEL that fails after deleting some keys says how many went, not TRYAGAIN', async () => {
    mem.data.set('a', Buffer.from('1'));
    mem.data.set('b', Buffer.from('2'));
    mem.refuseCasOf = 'b';
    try {
      const r = await client.call('DEL', 'a', 'b');
      assert.equal(r.type, 'error');
      assert.match(String(r.value), /^ERR deleted 1 of the keys, then failed: TRYAGAIN/);
      assert.equal(mem.data.has('a'), false);
      assert.equal(mem.data.has('b'), true);
      // Nothing deleted: the key's own error, which says nothing applied.
      const again = await client.call('DEL', 'b');
      assert.equal(again.type, 'error');
      assert.match(String(again.value), /^TRYAGAIN/);
    } finally {
      mem.refuseCasOf = undefined;
    }
  });

  it('a DEL where one key failed "not applied" and another timed out (it may have applied): TIMEOUT, not TRYAGAIN', async () => {
    // Nothing counted as deleted, so the first failure was the answer: -TRYAGAIN ("nothing
    // applied") although the other key's delete may have applied (here it did).
    mem.data.set('b', Buffer.from('2'));
    mem.data.set('c', Buffer.from('3'));
    mem.refuseCasOf = 'b';
    mem.timeoutCasOf = 'c';
    try {
      const r = await client.call('DEL', 'b', 'c');
      assert.equal(r.type, 'error');
      assert.match(String(r.value), /^TIMEOUT/);
      assert.equal(mem.data.has('c'), false, 'the timed-out delete applied');
    } finally {
      mem.refuseCasOf = undefined;
      mem.timeoutCasOf = undefined;
      mem.data.delete('b');
    }
  });

  it('a DEL that deleted some keys, where one key failed "not applied" and a later one timed out: the reply names the TIMEOUT', async () => {
    // The reply named the first failure only ("then failed: TRYAGAIN ..."): "deleted 1" then read
    // as exact although the timed-out delete may have applied (here it did).
    mem.data.set('a', Buffer.from('1'));
    mem.data.set('b', Buffer.from('2'));
    mem.data.set('c', Buffer.from('3'));
    mem.refuseCasOf = 'b';
    mem.timeoutCasOf = 'c';
    try {
      const r = await client.call('DEL', 'a', 'b', 'c');
      assert.equal(r.type, 'error');
      assert.match(String(r.value), /^ERR deleted at least 1 of the keys, then failed: TIMEOUT/);
      assert.equal(mem.data.has('c'), false, 'the timed-out delete applied');
    } finally {
      mem.refuseCasOf = undefined;
      mem.timeoutCasOf = undefined;
      mem.data.delete('b');
    }
  });

  it('an APPEND over the value limit fails alone; the APPENDs folded with it apply', async () => {
    mem.delayMs = 20;
    const port = Number(door.address.split(':')[1]);
    const [a, b, c] = await Promise.all([RespClient.connect(port), RespClient.connect(port), RespClient.connect(port)]);
    try {
      const first = a.call('APPEND', 'log', 'a'); // in flight: the next two wait and fold together
      await new Promise((r) => setTimeout(r, 5));
      const [ra, rb, rc] = await Promise.all([first, b.call('APPEND', 'log', 'x'.repeat(600)), c.call('APPEND', 'log', 'y'.repeat(600))]);
      assert.equal(plain(ra), 1);
      const replies = [rb, rc];
      assert.equal(replies.filter((r) => r.type === 'error').length, 1, 'one of the two is over the limit');
      assert.ok(replies.some((r) => plain(r) === 601), 'the other applied');
      assert.equal(mem.data.get('log')?.length, 601);
    } finally {
      mem.delayMs = 1;
      for (const x of [a, b, c]) x.close();
    }
  });

  it('SCAN MATCH with a literal prefix longer than any key answers an empty page', async () => {
    mem.data.set('x', Buffer.from('1'));
    for (const n of [65, 5000, 70_000]) {
      assert.deepEqual(plain(await client.call('SCAN', '0', 'MATCH', `${'x'.repeat(n)}*`)), ['0', []]);
    }
  });
});
