// A replica whose start fails gives back its store. In a host process (kvs up's default layout) the
// replica is started again in the same process; a store left open by the failed start refused every
// later one ("already open in this process") until the whole process restarted. Found by a chaos
// run: a corrupt store's first error was followed by that message on every retry.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../../src/server/config.ts';
import { KvsServer } from '../../src/server/server.ts';
import { silentLogger } from '../../src/log/logger.ts';

describe('a replica whose start fails', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvs-start-failure-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('closes its store, so a later start in the same process opens it', async () => {
    // The replica's port is taken: listen fails after the store is open.
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    const config = loadConfig({ id: '1', listen: `127.0.0.1:${port}`, data: join(dir, 'r1'), 'shared-data': join(dir, 'shared'), replicas: `1=127.0.0.1:${port}` });
    await assert.rejects(KvsServer.start(config, { log: silentLogger }), /EADDRINUSE/);
    await new Promise<void>((resolve) => blocker.close(() => resolve()));
    const server = await KvsServer.start(config, { log: silentLogger });
    await server.close();
  });
});
