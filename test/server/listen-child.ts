// Child of listen-dual-stack.test.ts, run inside a network namespace of its own: starts one replica
// with the doors' addresses of kustomize/base/kvs.yaml, reaches every door through `client` (the one
// loopback address the namespace has) and writes and reads a key through the native door. Prints one
// JSON line: {doors: {port: "ok" | error}, value} or {error}.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { splitAddress } from '../../src/address/address.ts';
import { KvsClient } from '../../src/client/client.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { loadConfig } from '../../src/server/config.ts';
import { KvsServer } from '../../src/server/server.ts';

const client = process.argv[2]!;
const settings = parseYaml(readFileSync(new URL('../../kustomize/base/kvs.yaml', import.meta.url), 'utf8')) as Record<string, string>;
const dir = mkdtempSync(join(tmpdir(), 'kvs-listen-'));
const join6 = (host: string, port: number): string => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);
const nativePort = splitAddress(settings.listen!)[1];
const out: Record<string, unknown> = {};
try {
  const config = loadConfig({ id: '1', listen: settings.listen!, resp: settings.resp!, grpc: settings.grpc!, http: settings.http!, data: join(dir, 'r1'), 'shared-data': join(dir, 'shared'), replicas: `1=${join6(client, nativePort)}` });
  const server = await KvsServer.start(config, { log: silentLogger });
  const doors: Record<string, string> = {};
  for (const door of ['listen', 'resp', 'grpc', 'http']) {
    const port = splitAddress(settings[door]!)[1];
    doors[door] = await new Promise<string>((resolve) => {
      const c = net.connect({ host: client, port });
      c.on('connect', () => (c.destroy(), resolve('ok')));
      c.on('error', (e) => resolve(e.message));
    });
  }
  out.doors = doors;
  const kv = new KvsClient({ endpoints: [join6(client, nativePort)], timeoutMs: 10_000 });
  await kv.put('k', 'v');
  out.value = String(await kv.get('k'));
  kv.close();
  await server.close();
} catch (e) {
  out.error = (e as Error).message;
}
rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify(out));
process.exit(0);
