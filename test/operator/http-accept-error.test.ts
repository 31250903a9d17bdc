// The operator's /healthz and /metrics server (src/operator/controller.ts) after its listen: a
// listening server's 'error' is a connection it failed to accept (ENOMEM, ENOBUFS) and it listens
// on. Found in review of c4be83c, which made the doors hear it: the operator's server did not, so
// one accept failure was an uncaught exception that ended the operator.
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { test } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { Operator } from '../../src/operator/controller.ts';
import { createLogger } from '../../src/log/logger.ts';

test('an accept error of the operator\'s HTTP server is logged, and it serves on', async () => {
  const kc = new KubeConfig();
  kc.loadFromOptions({ clusters: [{ name: 'none', server: 'https://127.0.0.1:9' }], users: [{ name: 'op' }], contexts: [{ name: 'none', cluster: 'none', user: 'op' }], currentContext: 'none' });
  const lines: string[] = [];
  const op = new Operator(kc, { namespace: 'kvs', identity: 'op-1', httpPort: 0, httpHost: '127.0.0.1', log: createLogger({ format: 'json', write: (l) => void lines.push(l) }) });
  // Only its HTTP server: no lease, no API server needed.
  const parts = op as unknown as { serveHttp(port: number, host: string): Promise<void>; http: Server };
  await parts.serveHttp(0, '127.0.0.1');
  try {
    assert.doesNotThrow(() => parts.http.emit('error', Object.assign(new Error('accept ENOMEM'), { code: 'ENOMEM', syscall: 'accept' })));
    assert.match(lines.join(''), /accept ENOMEM/);
    assert.equal(await (await fetch(`http://127.0.0.1:${op.httpPort}/healthz`)).text(), 'ok\n');
  } finally {
    await new Promise((r) => parts.http.close(r));
  }
});
