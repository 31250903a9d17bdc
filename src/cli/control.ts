// The local control channel of `kvs up`: a Unix socket in the data directory through which
// `kvs reshard` and `kvs replica` ask the running supervisor to start or stop a shard group's
// replicas (so they stay its children: restarted on crash, stopped on Ctrl-C). One JSON line each way.
import net from 'node:net';
import { join } from 'node:path';
import { rmSync } from 'node:fs';

export type ControlRequest =
  | { cmd: 'add-group'; group: number }
  | { cmd: 'stop-group'; group: number }
  /** Start one more replica of a group, with --join; answers its id and native address. */
  | { cmd: 'add-replica'; group: number }
  | { cmd: 'stop-replica'; id: number };
export interface AddedReplica {
  id: number;
  address: string;
}
export type ControlResponse = { ok: true; replica?: AddedReplica } | { ok: false; error: string };

export function controlPath(dataDir: string): string {
  return join(dataDir, 'control.sock');
}

export function serveControl(dataDir: string, handle: (r: ControlRequest) => Promise<AddedReplica | void>): net.Server {
  const path = controlPath(dataDir);
  rmSync(path, { force: true }); // a socket file left by a killed supervisor
  const server = net.createServer((s) => {
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      if (buf.length > 4096) s.destroy();
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      let req: ControlRequest;
      try {
        req = JSON.parse(buf.slice(0, nl)) as ControlRequest;
      } catch {
        s.end(`${JSON.stringify({ ok: false, error: 'bad request' })}\n`);
        return;
      }
      handle(req).then(
        (replica) => s.end(`${JSON.stringify({ ok: true, ...(replica ? { replica } : {}) })}\n`),
        (e: unknown) => s.end(`${JSON.stringify({ ok: false, error: (e as Error).message })}\n`),
      );
    });
    s.on('error', () => {});
  });
  server.listen(path);
  return server;
}

export function callControl(dataDir: string, req: ControlRequest, timeoutMs = 60_000): Promise<AddedReplica | undefined> {
  return new Promise((resolve, reject) => {
    const s = net.connect(controlPath(dataDir));
    let buf = '';
    const timer = setTimeout(() => s.destroy(new Error('kvs up did not answer')), timeoutMs);
    s.on('connect', () => s.write(`${JSON.stringify(req)}\n`));
    s.on('data', (d: Buffer) => (buf += d.toString('utf8')));
    s.on('end', () => {
      clearTimeout(timer);
      try {
        const res = JSON.parse(buf) as ControlResponse;
        if (res.ok) resolve(res.replica);
        else reject(new Error(res.error));
      } catch {
        reject(new Error('bad answer from kvs up'));
      }
    });
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot reach the running "kvs up" (${e.message}): is the cluster started with kvs up?`));
    });
  });
}
