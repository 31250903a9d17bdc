// A native-protocol replica for client tests: it records every request (unwrapping FORWARD, as the
// smart client and relays send them) and answers each as a healthy replica would, with no data
// behind it, or as the test says.
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before } from 'node:test';
import { KvsClient, ShardedClient } from '../../src/client/index.ts';
import { decodeForward } from '../../src/wire/forward.ts';
import type { ConfigSource } from '../../src/client/sharded-client.ts';
import { loadXxh64 } from '../../src/partition/index.ts';
import { initialConfig, type ClusterConfig } from '../../src/placement/config.ts';
import { FrameDecoder, FrameType, decodeRequest, encodeResponse, type Request, type Response } from '../../src/wire/index.ts';

export interface FakeReplica {
  address: string;
  /** Every request received, in order. */
  seen: Request[];
  close(): void;
}

function answer(req: Request): Response {
  switch (req.op) {
    case 'get':
      return { kind: 'value', value: null };
    case 'scan':
      return { kind: 'scan', items: [], more: null };
    case 'count':
      return { kind: 'count', count: 0 };
    case 'cas':
      return { kind: 'cas', ok: true, current: req.value };
    default:
      return { kind: 'ok' };
  }
}

/**
 * `answer` says what to answer (undefined: stay silent; default: as a healthy empty replica);
 * `onRequest` sees each request as it arrives (a test watching several replicas in one order).
 */
export function fakeReplica(o: { answer?: (req: Request) => Response | undefined; onRequest?: (req: Request) => void } = {}): Promise<FakeReplica> {
  const answerWith = o.answer ?? answer;
  const seen: Request[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {}); // a client resetting the link is not this replica's failure
    const decoder = new FrameDecoder();
    sock.on('data', (b) => {
      decoder.push(b);
      for (let f = decoder.read(); f !== null; f = decoder.read()) {
        const inner = f.type === FrameType.Forward ? decodeForward(f.body) : f;
        const req = decodeRequest(inner.type, inner.body);
        seen.push(req);
        o.onRequest?.(req);
        const res = answerWith(req);
        if (res) sock.write(encodeResponse(f.requestId, res));
      }
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
        seen,
        close: () => {
          for (const s of sockets) s.destroy();
          server.close();
        },
      }),
    ),
  );
}

/** A configuration source with a fixed configuration of two groups, both served by one (fake) replica. */
export async function fixedSource(address: string): Promise<ConfigSource> {
  const config: ClusterConfig = initialConfig(await loadXxh64(), [1, 2].map((id) => ({ id, replicas: [{ id: id * 100 + 1, address }] })), 64);
  return { current: config, refresh: async () => config, waitFor: async () => config, onChange: () => () => {}, stop: () => {} };
}

/**
 * A KvsClient and a ShardedClient on one fake replica, for the enclosing describe (its before and
 * after hooks open and close them): `replica` is set once the hooks ran.
 */
export function clientsOnFakeReplica(timeoutMs = 2000): { replica: FakeReplica; clients: KvsClient[] } {
  const ctx = { replica: undefined as unknown as FakeReplica, clients: [] as KvsClient[] };
  before(async () => {
    ctx.replica = await fakeReplica();
    ctx.clients.push(new KvsClient({ endpoints: [ctx.replica.address], timeoutMs }));
    ctx.clients.push(new ShardedClient({ placement: [], configSource: await fixedSource(ctx.replica.address), pollMs: 0, timeoutMs }));
  });
  after(() => {
    for (const c of ctx.clients) c.close();
    ctx.replica.close();
  });
  return ctx;
}
