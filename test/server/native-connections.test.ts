// kvs_door_connections counts the native door's client connections (docs/doors.md lists it for
// every door; an outside test found only RESP and WebSocket counted). Replica links are not clients.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, it } from 'node:test';
import { encodeRequest } from '../../src/wire/index.ts';
import { parsePrometheus, sampleValue } from '../doors/prom-parse.ts';
import { waitFor } from '../support/wait.ts';
import { TestCluster } from './cluster.ts';

const BASE = 26800;
const HTTP = 26900;
let cluster: TestCluster;
before(async () => {
  cluster = await TestCluster.start({ replicas: 1, basePort: BASE, wrap: (id) => ['env', `KVS_HTTP=127.0.0.1:${HTTP + id}`] });
});
after(async () => {
  await cluster?.stop();
});

async function nativeConnections(): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${HTTP + 1}/metrics`)).text();
  return sampleValue(parsePrometheus(text), 'kvs_door_connections', { door: 'native' }) ?? 0;
}

it('native client connections are counted while open', async () => {
  const before = await nativeConnections();
  const [host, port] = cluster.address(1).split(':') as [string, string];
  const sockets = await Promise.all(
    [1, 2, 3].map(
      () =>
        new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect(Number(port), host, () => {
            s.write(encodeRequest(1, { op: 'ping' }));
            s.once('data', () => resolve(s)); // answered: the door took it as a client
          });
          s.on('error', reject);
        }),
    ),
  );
  assert.equal(await nativeConnections(), before + 3);
  for (const s of sockets) s.destroy();
  await waitFor('the closed connections to be uncounted', async () => (await nativeConnections()) === before);
});
