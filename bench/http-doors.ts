// The HTTP and WebSocket doors on uWebSockets.js vs node:http + ws (KVS_HTTP_IMPL=node): a
// one-replica `kvs server --http` per round, a 100-byte key read with consistency=stale (a local
// read: the door, not Raft, is what is measured), closed loop, `--conns` connections with one
// request in flight each. HTTP: GET /v1/kv/bench?consistency=stale over keep-alive; WebSocket: a
// native GET frame per message at /v1/ws. Prints req/s, p50/p99 (µs) and the server's CPU µs per
// request (/proc utime+stime). Rounds alternate the implementations. Not a test.
//   unshare -n bash -c 'ip link set lo up; node --import tsx bench/http-doors.ts [--seconds 5] [--conns 16] [--rounds 2]'
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { FrameType, encodeRequest, readFrameHeader } from '../src/wire/index.ts';
import { Histogram } from './load/histogram.ts';
import { machine, printResult } from './machine.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, conns: { type: 'string', default: '16' }, rounds: { type: 'string', default: '2' }, port: { type: 'string', default: '7400' } } });
const seconds = Number(values.seconds);
const conns = Number(values.conns);
const port = Number(values.port);
const BIN = resolve(import.meta.dirname, '../bin/kvs.js');
const KEY = 'bench';
const CLK_TCK = 100;

function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK; // utime, stime
}

async function startServer(impl: 'uws' | 'node', dir: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [BIN, 'server', '--id', '1', '--listen', `127.0.0.1:${port}`, '--data', dir, '--replicas', `1=127.0.0.1:${port}`, '--http', `127.0.0.1:${port + 1}`, '--log-level', 'warn'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, KVS_HTTP_IMPL: impl },
  });
  for (let i = 0; i < 300; i++) {
    const ok = await fetch(`http://127.0.0.1:${port + 1}/readyz`).then((r) => r.status === 200, () => false);
    if (ok) {
      await fetch(`http://127.0.0.1:${port + 1}/v1/kv/${KEY}`, { method: 'PUT', body: 'x'.repeat(100) });
      return child;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`the ${impl} server did not become ready`);
}

/** Runs `conns` closed loops of `one` for the bench's duration; returns the latencies. */
async function closedLoop(one: (conn: number) => Promise<void>): Promise<Histogram> {
  const h = new Histogram();
  const until = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: conns }, async (_, c) => {
      while (performance.now() < until) {
        const t0 = performance.now();
        await one(c);
        h.record((performance.now() - t0) * 1000);
      }
    }),
  );
  return h;
}

async function httpRun(): Promise<Histogram> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: conns });
  const get = (): Promise<void> =>
    new Promise((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: port + 1, path: `/v1/kv/${KEY}?consistency=stale`, agent }, (res) => {
          if (res.statusCode !== 200) reject(new Error(`HTTP ${res.statusCode}`));
          res.resume();
          res.on('end', () => resolve());
        })
        .on('error', reject);
    });
  await get(); // warm-up
  const h = await closedLoop(get);
  agent.destroy();
  return h;
}

async function wsRun(): Promise<Histogram> {
  const sockets = await Promise.all(
    Array.from({ length: conns }, () =>
      new Promise<WebSocket>((resolve, reject) => {
        const ws = new WebSocket(`ws://127.0.0.1:${port + 1}/v1/ws`);
        ws.binaryType = 'nodebuffer';
        ws.once('open', () => resolve(ws));
        ws.once('error', reject);
      }),
    ),
  );
  const waiting: ((b: Buffer) => void)[] = [];
  sockets.forEach((ws, i) => ws.on('message', (b: Buffer) => waiting[i]?.(b)));
  let id = 0;
  const get = (c: number): Promise<void> =>
    new Promise((resolve, reject) => {
      waiting[c] = (b) => {
        const h = readFrameHeader(b);
        if (h?.type !== FrameType.Value) reject(new Error(`unexpected answer type ${h?.type}`));
        resolve();
      };
      sockets[c]!.send(encodeRequest(++id, { op: 'get', key: Buffer.from(KEY), consistency: 'stale' }));
    });
  const h = await closedLoop(get);
  for (const ws of sockets) ws.close();
  return h;
}

console.log(`# ${machine()}; ${conns} connections x 1 in flight, ${seconds} s per run`);
for (let round = 0; round < Number(values.rounds); round++) {
  for (const impl of round % 2 === 0 ? (['uws', 'node'] as const) : (['node', 'uws'] as const)) {
    const dir = mkdtempSync(join(tmpdir(), 'kvs-http-bench-'));
    const server = await startServer(impl, dir);
    try {
      for (const [door, run] of [['http', httpRun], ['ws', wsRun]] as const) {
        const cpu0 = cpuMs(server.pid!);
        const h = await run();
        const cpu = cpuMs(server.pid!) - cpu0;
        printResult({ round, impl, door, reqPerS: Math.round(h.total / seconds), p50us: h.percentile(50), p99us: h.percentile(99), serverCpuUsPerReq: Number(((cpu * 1000) / h.total).toFixed(1)) });
      }
    } finally {
      server.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
