// Run by close.test.ts in a child process: calls pending on a client when close() is called, and a
// call after it. Prints one JSON line of what each call came to; the process must then exit by itself
// (no socket or timer of the client left). argv[2]: plain | sharded-silent | sharded-refused.
import { createServer, type AddressInfo } from 'node:net';
import { KvsClient, KvsError } from '../../src/client/client.ts';
import { ShardedClient } from '../../src/client/sharded-client.ts';

const listen = (server: ReturnType<typeof createServer>): Promise<string> =>
  new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`127.0.0.1:${(server.address() as AddressInfo).port}`)));

// A replica that reads everything and answers nothing; it must not keep the process alive itself.
const silent = createServer((s) => {
  s.on('error', () => {});
  s.resume();
});
const silentAddr = await listen(silent);
silent.unref();
// An address that refuses connections.
const gone = createServer();
const refusedAddr = await listen(gone);
await new Promise((r) => gone.close(r));

const mode = process.argv[2];
const timeoutMs = 60_000;
const kv =
  mode === 'plain'
    ? new KvsClient({ endpoints: [silentAddr], timeoutMs, attemptTimeoutMs: timeoutMs })
    : new ShardedClient({ placement: [mode === 'sharded-silent' ? silentAddr : refusedAddr], timeoutMs, attemptTimeoutMs: timeoutMs });
const outcome = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'resolved',
    (e: unknown) => (e instanceof KvsError ? `${e.code}: ${e.message}` : `other: ${String(e)}`),
  );
const pending = [outcome(kv.get('a')), outcome(kv.put('b', 'v'))];
await new Promise((r) => setTimeout(r, 300));
const closedAt = Date.now();
kv.close();
const results = await Promise.all(pending);
const after = await Promise.all([outcome(kv.get('c')), outcome(kv.put('d', 'v'))]);
process.on('exit', () => console.log(JSON.stringify({ results, after, exitMsAfterClose: Date.now() - closedAt })));
