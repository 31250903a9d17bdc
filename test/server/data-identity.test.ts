// A replica started on another replica's data directory (swapped --id, --group or --data) is
// refused before it runs: it would otherwise sit outside its log's configuration, or reuse the
// other node's vote. `kvs server` prints one clear line and exits non-zero; the directory is
// left to its replica, which starts as before.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../../src/server/config.ts';
import { KvsServer } from '../../src/server/server.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { StoreIdentityError } from '../../src/storage/open-store.ts';

const MAIN = resolve(import.meta.dirname, '../../src/cli/main.ts');

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('a replica started on another replica data directory', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvs-data-identity-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const shared of [false, true]) {
    it(`is refused${shared ? ' (stores in a shared environment)' : ''}, and the directory stays with its replica`, async () => {
      const [p1, p2] = [await freePort(), await freePort()];
      const replicas = `1=127.0.0.1:${p1},2=127.0.0.1:${p2}`;
      const flags = (id: number, data: string, extra: Record<string, string> = {}) =>
        loadConfig({ id: String(id), listen: `127.0.0.1:${id === 1 ? p1 : p2}`, data, replicas, ...(shared ? { 'shared-data': join(dir, `p-${shared}`) } : {}), ...extra });
      const r1 = join(dir, `r1-${shared}`);
      const r2 = join(dir, `r2-${shared}`);
      for (const [id, data] of [[1, r1], [2, r2]] as const) await (await KvsServer.start(flags(id, data), { log: silentLogger })).close();

      // Replica 2 given replica 1's directory, and replica 1 asked to be of another group.
      await assert.rejects(KvsServer.start(flags(2, r1), { log: silentLogger }), (e) => {
        assert.ok(e instanceof StoreIdentityError, String(e));
        assert.ok(e.message.startsWith(`${r1} holds the store of replica 1 of group 0`), e.message);
        assert.match(e.message, /started as replica 2 of group 0 \(--id 2 --group 0\)/);
        return true;
      });
      await assert.rejects(KvsServer.start(flags(1, r1, { group: '7' }), { log: silentLogger }), /holds the store of replica 1 of group 0.*started as replica 1 of group 7/);
      // Each replica still starts on its own directory (the refused starts gave their stores back).
      for (const [id, data] of [[1, r1], [2, r2]] as const) await (await KvsServer.start(flags(id, data), { log: silentLogger })).close();
    });
  }

  it('makes kvs server print one line naming the directory and exit non-zero', async () => {
    const [p1, p2] = [await freePort(), await freePort()];
    const replicas = `1=127.0.0.1:${p1},2=127.0.0.1:${p2}`;
    const r1 = join(dir, 'cli-r1');
    await (await KvsServer.start(loadConfig({ id: '1', listen: `127.0.0.1:${p1}`, data: r1, replicas }), { log: silentLogger })).close();
    const r = spawnSync(process.execPath, ['--import', 'tsx', MAIN, 'server', '--id', '2', '--listen', `127.0.0.1:${p2}`, '--data', r1, '--replicas', replicas], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(r.signal, null, r.stderr);
    assert.equal(r.status, 3, r.stderr);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.ok(lines[0]!.startsWith(`kvs: ${r1} holds the store of replica 1 of group 0, but this server was started as replica 2 of group 0 (--id 2 --group 0)`), lines[0]);
  });
});
