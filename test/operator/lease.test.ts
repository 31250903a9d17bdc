// The operator's Lease (src/operator/lease.ts) against a minimal coordination.k8s.io Lease endpoint:
// one in-memory Lease behind two ports, one per operator, so one operator's API server connection
// can be made to hang (requests accepted, never answered) while the other's works.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { LeaderLease } from '../../src/operator/lease.ts';
import { waitFor } from '../support/wait.ts';

interface Lease {
  metadata: { name: string; namespace?: string; resourceVersion: string };
  spec?: Record<string, unknown>;
}

class LeaseApi {
  lease: Lease | undefined;
  private rv = 1;
  /** Ports whose requests are accepted and never answered. */
  readonly hanging = new Set<string>();
  private readonly servers: Server[] = [];
  private readonly stuck: ServerResponse[] = [];

  async listen(which: string): Promise<string> {
    const s = createServer((req, res) => this.handle(which, req, res));
    this.servers.push(s);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  }

  /** Answers again; requests left hanging are cut (a request without a timeout would wait forever). */
  release(): void {
    this.hanging.clear();
    for (const r of this.stuck.splice(0)) r.destroy();
  }

  async close(): Promise<void> {
    this.release();
    for (const s of this.servers) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  }

  private handle(which: string, req: IncomingMessage, res: ServerResponse): void {
    if (this.hanging.has(which)) {
      this.stuck.push(res);
      return;
    }
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const send = (code: number, o: unknown): void => void res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(o));
      const status = (code: number): void => send(code, { kind: 'Status', apiVersion: 'v1', code });
      if (req.method === 'GET') return this.lease ? send(200, this.lease) : status(404);
      const o = JSON.parse(body) as Lease;
      if (req.method === 'POST') {
        if (this.lease) return status(409);
        this.lease = { ...o, metadata: { ...o.metadata, resourceVersion: String(this.rv++) } };
        return send(201, this.lease);
      }
      if (req.method === 'PUT') {
        if (!this.lease || o.metadata.resourceVersion !== this.lease.metadata.resourceVersion) return status(409);
        this.lease = { ...o, metadata: { ...o.metadata, resourceVersion: String(this.rv++) } };
        return send(200, this.lease);
      }
      status(405);
    });
  }
}

function kubeconfig(server: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({ clusters: [{ name: 'c', server, skipTLSVerify: true }], users: [{ name: 'u' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
  return kc;
}

test('an API server that stops answering mid-renewal: the holder steps down at its renew deadline, before another can take the lease', async () => {
  const api = new LeaseApi();
  const [urlA, urlB] = [await api.listen('A'), await api.listen('B')];
  const changes: string[] = [];
  // A lease of 6 s, renewed every 200 ms, given up 3 s after a renewal began: a machine too loaded
  // to run a renewal for a second or two does not lose A its lease (B taking it while A answers),
  // nor take A past the point where it must have stepped down.
  const durationS = 6;
  const make = (who: string, url: string): LeaderLease =>
    new LeaderLease(kubeconfig(url), { namespace: 'kvs', name: 'kvctl', identity: who, durationS, renewMs: 200, renewDeadlineMs: 3000, onChange: (l) => changes.push(`${who} ${l ? 'leads' : 'stops'}`) });
  const a = make('A', urlA);
  const b = make('B', urlB);
  let both = false;
  const watch = setInterval(() => (both ||= a.isLeader && b.isLeader), 5);
  try {
    a.start();
    await waitFor('A leads', () => a.isLeader);
    b.start();
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(!b.isLeader);
    const cut = Date.now();
    api.hanging.add('A');
    // Before: A's renewal awaited an answer that never came and no request had a timeout, so A
    // went on leading forever, and B took the expired lease: two operators acting at once.
    await waitFor('A steps down', () => !a.isLeader);
    const down = Date.now() - cut;
    // The last renewal began at most renewMs before the cut: down by its deadline (3 s), plus slack.
    // Before the lease (6 s) can expire for the others: its deadline counts from the start of its
    // last renewal, at most renewMs before the cut.
    assert.ok(down < durationS * 1000, `A stepped down ${down} ms after losing the API server`);
    await waitFor('B leads', () => b.isLeader);
    assert.ok(!both, `never both leading: ${changes.join(', ')}`);
    assert.ok(changes.indexOf('A stops') < changes.indexOf('B leads'), changes.join(', '));
  } finally {
    clearInterval(watch);
    api.release();
    await b.stop();
    await a.stop();
    await api.close();
  }
});

test('lease requests time out: an operator whose API server hung takes the lease again once it answers', async () => {
  const api = new LeaseApi();
  const [urlA, urlB] = [await api.listen('A'), await api.listen('B')];
  const a = new LeaderLease(kubeconfig(urlA), { namespace: 'kvs', name: 'kvctl', identity: 'A', durationS: 2, renewMs: 200, renewDeadlineMs: 1000, requestTimeoutMs: 300, onChange: () => undefined });
  const b = new LeaderLease(kubeconfig(urlB), { namespace: 'kvs', name: 'kvctl', identity: 'B', durationS: 2, renewMs: 200, onChange: () => undefined });
  try {
    // Waits bounded by waitFor's default (20 s), not a few seconds: they wait for states, and a
    // loaded machine may take longer to reach them.
    a.start();
    await waitFor('A leads', () => a.isLeader);
    api.hanging.add('A');
    await waitFor('A steps down', () => !a.isLeader);
    b.start();
    await waitFor('B leads', () => b.isLeader);
    api.hanging.delete('A'); // new requests are answered; the hung one stays hung
    // B goes away, handing the lease over: A, whose hung request has timed out and who has kept
    // trying, takes it. Before: A's round waited forever on the hung request and never tried again.
    await b.stop();
    await waitFor('A leads again', () => a.isLeader);
  } finally {
    api.release();
    await b.stop();
    await a.stop();
    await api.close();
  }
});

test('a renew deadline not below the lease duration is refused', () => {
  const kc = kubeconfig('http://127.0.0.1:1');
  assert.throws(() => new LeaderLease(kc, { namespace: 'kvs', name: 'kvctl', identity: 'A', durationS: 2, renewDeadlineMs: 2000, onChange: () => undefined }), /below the lease duration/);
});
