// A failed call says what it tried and what went wrong: every replica it could not reach and the last
// underlying error, and for a ShardedClient without a configuration the placement addresses and why
// they gave none (refused, silent, not the placement group). Regression (outside review, 2026-12-06):
// the message named only the last replica, or said just "no cluster configuration and no endpoint to
// fall back to"; status(endpoint) and ShardedClient.ready() rejected with other error classes.
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { KvsClient, KvsError } from '../../src/client/client.ts';
import { ShardedClient } from '../../src/client/sharded-client.ts';
import { unreachedMessage } from '../../src/cluster/group-call.ts';
import { FrameDecoder, decodeRequest, encodeResponse } from '../../src/wire/index.ts';

const timeoutMs = 1000;

/** Rejects with an UNREACHABLE KvsError whose message matches every pattern, well within 5 × timeoutMs. */
async function unreachable(p: Promise<unknown>, ...patterns: RegExp[]): Promise<void> {
  const t = Date.now();
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof KvsError, String(e));
    assert.equal(e.code, 'UNREACHABLE', e.message);
    for (const re of patterns) assert.match(e.message, re);
    return true;
  });
  assert.ok(Date.now() - t < 5 * timeoutMs);
}

const esc = (s: string): RegExp => new RegExp(s.replace(/[.]/g, '\\.'));

describe('error messages', () => {
  const servers: Server[] = [];
  const sockets = new Set<Socket>();
  const refused: string[] = [];
  let notPlacement = '';
  before(async () => {
    for (let i = 0; i < 3; i++) {
      const gone = createServer();
      refused.push(await new Promise<string>((r) => gone.listen(0, '127.0.0.1', () => r(`127.0.0.1:${(gone.address() as AddressInfo).port}`))));
      await new Promise((r) => gone.close(r));
    }
    // A replica that is not the placement group: it answers every get "no such key".
    const server = createServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
      const d = new FrameDecoder();
      s.on('data', (b) => {
        d.push(b);
        for (let f = d.read(); f !== null; f = d.read()) {
          const req = decodeRequest(f.type, f.body);
          s.write(encodeResponse(f.requestId, req.op === 'get' ? { kind: 'value', value: null } : { kind: 'error', error: { code: 'UNAVAILABLE', message: 'busy' } }));
        }
      });
    });
    servers.push(server);
    notPlacement = await new Promise<string>((r) => server.listen(0, '127.0.0.1', () => r(`127.0.0.1:${(server.address() as AddressInfo).port}`)));
  });
  after(() => {
    for (const s of sockets) s.destroy();
    for (const s of servers) s.close();
  });

  it('KvsClient names every replica it could not reach and the last error', async () => {
    const kv = new KvsClient({ endpoints: refused.slice(0, 2), timeoutMs });
    try {
      await unreachable(kv.get('k'), esc(refused[0]!), esc(refused[1]!), /ECONNREFUSED/);
      await unreachable(kv.put('k', 'v'), esc(refused[0]!), esc(refused[1]!), /ECONNREFUSED/);
    } finally {
      kv.close();
    }
  });

  it('ShardedClient with the placement group unreachable names its addresses and the error', async () => {
    const kv = new ShardedClient({ placement: [refused[0]!], timeoutMs });
    try {
      await unreachable(kv.get('k'), esc(`placement ${refused[0]!}`), /ECONNREFUSED/);
      await unreachable(kv.put('k', 'v'), esc(`placement ${refused[0]!}`), /ECONNREFUSED/);
    } finally {
      kv.close();
    }
    // With fallback replicas that are unreachable too: all of them, and the placement's error.
    const fb = new ShardedClient({ placement: [refused[0]!], endpoints: refused.slice(1), timeoutMs });
    try {
      await unreachable(fb.put('k', 'v'), esc(refused[1]!), esc(refused[2]!), esc(`placement ${refused[0]!}`), /ECONNREFUSED/);
    } finally {
      fb.close();
    }
  });

  it('ShardedClient pointed at a replica outside the placement group says it holds no configuration', async () => {
    const kv = new ShardedClient({ placement: [notPlacement], timeoutMs });
    try {
      await unreachable(kv.get('k'), esc(`placement ${notPlacement}`), /holds none: not the placement group/);
    } finally {
      kv.close();
    }
  });

  it('status of an unreachable replica and ready() without a configuration reject with KvsError', async () => {
    const kv = new KvsClient({ endpoints: [refused[0]!], timeoutMs });
    try {
      await unreachable(kv.status(refused[1]!), esc(refused[1]!), /ECONNREFUSED/);
    } finally {
      kv.close();
    }
    const sharded = new ShardedClient({ placement: [refused[0]!], timeoutMs });
    try {
      await assert.rejects(sharded.ready(300), (e: unknown) => {
        assert.ok(e instanceof KvsError, String(e));
        assert.equal(e.code, 'UNAVAILABLE');
        assert.match(e.message, /no cluster configuration/);
        return true;
      });
    } finally {
      sharded.close();
    }
  });

  it('stays short with many replicas', () => {
    const addrs = Array.from({ length: 9 }, (_, i) => `10.0.0.${i}:7001`);
    assert.equal(unreachedMessage(addrs, 'boom'), 'could not reach 10.0.0.0:7001, 10.0.0.1:7001, 10.0.0.2:7001, 10.0.0.3:7001, 10.0.0.4:7001, 10.0.0.5:7001 and 3 more (last error: boom)');
    assert.equal(unreachedMessage(['a'], 'cannot reach a: connect ECONNREFUSED'), 'cannot reach a: connect ECONNREFUSED');
  });
});
