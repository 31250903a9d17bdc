// A newcomer's first minute: from a clean data directory, `kvs up`; cluster.json must not exist until
// it says ready, and the moment it does, writes and linearizable reads through every door of every
// replica — native, RESP, gRPC, HTTP — and the CLI all succeed, with no retry by the test (the
// RESP, gRPC and HTTP clients of the world do not retry either). Ports 29501-29812 (base 29501).
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { KvsClient } from '../../src/client/client.ts';
import type { ClusterReplica } from '../../src/cli/cluster-file.ts';
import { KV_PROTO_PATH } from '../../src/doors/grpc-door.ts';
import { RespClient } from '../doors/resp-client.ts';
import { reapOnExit } from '../support/processes.ts';
import { waitFor } from '../support/wait.ts';

const BIN = resolve(import.meta.dirname, '../../bin/kvs.js');
const BASE_PORT = 29501;
const run = promisify(execFile);

type Callback<T> = (err: grpc.ServiceError | null, res?: T) => void;
interface KvClient extends grpc.Client {
  Get(req: { key: string }, cb: Callback<{ value: string }>): void;
  Put(req: { key: string; value: string }, cb: Callback<object>): void;
}

function grpcClient(address: string): KvClient {
  const def = protoLoader.loadSync(KV_PROTO_PATH, { keepCase: true, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { protos: { KV: new (addr: string, creds: grpc.ChannelCredentials) => KvClient } };
  return new pkg.protos.KV(address, grpc.credentials.createInsecure());
}

function unary<Req, Res>(client: KvClient, method: 'Get' | 'Put', req: Req): Promise<Res> {
  return new Promise((ok, fail) => (client[method] as (r: Req, cb: Callback<Res>) => void).call(client, req, (err, res) => (err ? fail(err) : ok(res!))));
}

const port = (address: string): number => Number(address.split(':').pop());

/** One door of one replica: write a key, read it back linearizably. */
interface Door {
  name: string;
  put(key: string, value: string): Promise<void>;
  get(key: string): Promise<string | null>;
  close(): void;
}

async function doorsOf(r: ClusterReplica): Promise<Door[]> {
  const native = new KvsClient({ endpoints: [r.endpoints.native], timeoutMs: 10_000 });
  const resp = await RespClient.connect(port(r.endpoints.resp!));
  const rpc = grpcClient(r.endpoints.grpc!);
  const http = `http://${r.endpoints.http}/v1/kv/`;
  const dec = new TextDecoder();
  return [
    {
      name: `native ${r.endpoints.native}`,
      put: (k, v) => native.put(k, v),
      get: async (k) => {
        const v = await native.get(k);
        return v === null ? null : dec.decode(v);
      },
      close: () => native.close(),
    },
    {
      name: `RESP ${r.endpoints.resp}`,
      put: async (k, v) => assert.deepEqual(await resp.call('SET', k, v), { type: 'simple', value: 'OK' }),
      get: async (k) => {
        const v = await resp.call('GET', k);
        if (v.type === 'null') return null;
        if (v.type !== 'bulk') throw new Error(`GET answered ${JSON.stringify(v)}`);
        return dec.decode(v.value);
      },
      close: () => resp.socket.destroy(),
    },
    {
      name: `gRPC ${r.endpoints.grpc}`,
      put: async (k, v) => void (await unary(rpc, 'Put', { key: k, value: v })),
      get: async (k) => (await unary<{ key: string }, { value: string }>(rpc, 'Get', { key: k })).value,
      close: () => rpc.close(),
    },
    {
      name: `HTTP ${r.endpoints.http}`,
      put: async (k, v) => {
        const res = await fetch(http + encodeURIComponent(k), { method: 'PUT', body: v });
        const body = await res.text();
        assert.ok(res.ok, `HTTP PUT: ${res.status} ${body}`);
      },
      get: async (k) => {
        const res = await fetch(http + encodeURIComponent(k));
        const body = await res.text();
        if (res.status === 404) return null;
        assert.ok(res.ok, `HTTP GET: ${res.status} ${body}`);
        return body;
      },
      close: () => {},
    },
  ];
}

describe("a newcomer's first minute", () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvs-first-minute-'));
  let up: ChildProcess | undefined;
  after(async () => {
    if (up && up.exitCode === null) {
      const gone = new Promise((r) => up!.once('exit', r));
      up.kill('SIGINT'); // graceful: kvs up stops its replicas (SIGKILLs them after 5 s)
      await gone;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('kvs up says ready only when it serves: cluster.json appears then, and every door and the CLI work at once', async () => {
    const data = join(dir, 'data');
    const clusterFile = join(data, 'cluster.json');
    up = reapOnExit(spawn(process.execPath, [BIN, 'up', '--data', data, '--base-port', String(BASE_PORT)], { stdio: ['ignore', 'pipe', 'pipe'] }));
    const output: string[] = [];
    up.stderr!.on('data', (b: Buffer) => output.push(b.toString()));
    const publishedEarly: string[] = [];
    let readyLine = '';
    await new Promise<void>((ready, fail) => {
      let rest = '';
      up!.stdout!.on('data', (b: Buffer) => {
        const lines = (rest + b.toString()).split('\n');
        rest = lines.pop() ?? '';
        for (const line of lines) {
          output.push(`${line}\n`);
          if (line.startsWith('kvs up: ready')) {
            readyLine = line;
            return ready();
          }
          if (existsSync(clusterFile)) publishedEarly.push(line);
        }
      });
      up!.once('exit', (code) => fail(new Error(`kvs up exited (${code}) before it was ready:\n${output.join('')}`)));
    });
    assert.deepEqual(publishedEarly, [], 'cluster.json existed before kvs up said ready');
    // A healthy start waits for every replica: never a degraded ready.
    assert.match(readyLine, /^kvs up: ready in [\d.]+ s: every group has a leader, every replica applied the configuration/);

    // The moment it is ready: every door of every replica, placement replicas included.
    const replicas = (JSON.parse(readFileSync(clusterFile, 'utf8')) as { replicas: ClusterReplica[] }).replicas;
    assert.equal(replicas.length, 12);
    const doors = (await Promise.all(replicas.map(doorsOf))).flat();
    const failures: string[] = [];
    try {
      // One user trying every door in turn (not a load test: a busy CI machine must not fail it).
      for (const [i, door] of doors.entries()) {
        // Written through one door, read back through the next one (another replica's, or another protocol).
        const reader = doors[(i + 1) % doors.length]!;
        const key = `first-minute-${i}`;
        try {
          await door.put(key, `v${i}`);
          assert.equal(await door.get(key), `v${i}`, `${door.name} reads its own write`);
          assert.equal(await reader.get(key), `v${i}`, `${reader.name} reads the write made through ${door.name}`);
        } catch (e) {
          failures.push(`${door.name}: ${(e as Error).message}`);
        }
      }
    } finally {
      for (const d of doors) d.close();
    }
    assert.deepEqual(failures, [], `requests failed right after "ready":\n${output.join('')}`);

    // And the CLI, reading cluster.json as a user would.
    const cli = (args: string[]) => run(process.execPath, [BIN, ...args, '--data', data], { timeout: 60_000 });
    assert.equal((await cli(['put', 'hello', 'world'])).stdout, 'OK\n');
    // kvs get writes the value's bytes as they are (a newline only on a terminal).
    assert.equal((await cli(['get', 'hello'])).stdout, 'world');
    assert.equal((await cli(['get', 'first-minute-0'])).stdout, 'v0');
    // Leader balancing starts at "ready": while one process leads 2 groups more than another, kvs up
    // moves a leadership every 2 s, and a status taken during that hand-over rightly sees the group's
    // leader known by 1 of 3 for a moment (seen once in CI). What the status must say is "serving",
    // at once or right after such a moment; not a wait for a cluster that only later serves.
    const status = await waitFor('kvs status --json: serving', async () => {
      const out = await cli(['status', '--json']).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }));
      const s = JSON.parse(out.stdout) as { serving: boolean; notServing: string[]; degraded: string[] };
      return s.serving ? s : undefined;
    }, 10_000, 250);
    assert.deepEqual(status.notServing, [], 'kvs status agrees that the cluster serves');
    assert.deepEqual(status.degraded, [], 'and that every replica does');
    assert.equal(status.serving, true);
  });
});
