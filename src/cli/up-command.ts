// `kvs up`: a local cluster of replica processes on 127.0.0.1, supervised until Ctrl-C.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readCluster, writeCluster, type ClusterReplica } from './cluster-file.ts';
import { ExitCode, UsageError, parse } from './args.ts';

const HELP = `Usage: kvs up [--data DIR] [--replicas N] [--base-port P]

Starts one Raft group of N replica processes on 127.0.0.1 (default 3), data under DIR (default
./data), and writes DIR/cluster.json with every replica's id, pid, data dir and endpoints.
Running it again on the same DIR reuses the same ids and ports and recovers the data.
A replica that crashes is restarted after a second (its pid in cluster.json is kept current).
Ctrl-C (SIGINT) or SIGTERM stops every replica gracefully (a leader hands over first).

  --data DIR         data directory (default ./data)
  --replicas N       replicas in the group (default 3)
  --base-port P      first port (default 7001). Replica i (from 1) listens on:
                       native P+i-1, RESP P+100+i-1, gRPC P+200+i-1,
                       HTTP P+300+i-1 (WebSocket at ws://HOST:PORT/v1/ws on the HTTP port)`;

/** Offsets of each door's port range from the base port (replica i adds i-1). */
const DOOR_PORT_OFFSETS = { resp: 100, grpc: 200, http: 300 } as const;

/** A replica's endpoints: the native door and every front door, with the WebSocket URL on HTTP. */
function endpointsFor(base: number, i: number): ClusterReplica['endpoints'] {
  const at = (offset: number): string => `127.0.0.1:${base + offset + i}`;
  const http = at(DOOR_PORT_OFFSETS.http);
  return { native: at(0), resp: at(DOOR_PORT_OFFSETS.resp), grpc: at(DOOR_PORT_OFFSETS.grpc), http, ws: `ws://${http}/v1/ws` };
}

/** `kvs server` flags for the front doors listed in a replica's endpoints (older cluster files have none). */
function doorFlags(endpoints: ClusterReplica['endpoints']): string[] {
  return (['resp', 'grpc', 'http'] as const).flatMap((d) => (endpoints[d] ? [`--${d}`, endpoints[d]] : []));
}

const BIN = resolve(fileURLToPath(import.meta.url), '../../../bin/kvs.js');

export async function runUp(argv: string[]): Promise<number> {
  const args = parse(argv, { data: { type: 'string' }, replicas: { type: 'string' }, 'base-port': { type: 'string' } }, HELP);
  if (!args) return ExitCode.Ok;
  const dataDir = resolve(String(args.values.data ?? 'data'));
  mkdirSync(dataDir, { recursive: true });
  let replicas = readCluster(dataDir);
  if (replicas.length === 0) {
    const n = Number(args.values.replicas ?? 3);
    const base = Number(args.values['base-port'] ?? 7001);
    if (!Number.isInteger(n) || n < 1 || n > 9) throw new UsageError('--replicas must be 1..9');
    if (!Number.isInteger(base) || base < 1024 || base + DOOR_PORT_OFFSETS.http + n > 65535) {
      throw new UsageError(`--base-port must leave room for every replica's doors (up to base+${DOOR_PORT_OFFSETS.http + n - 1}) in 1024..65535`);
    }
    replicas = Array.from({ length: n }, (_, i) => ({
      id: i + 1,
      group: 0,
      pid: 0,
      dataDir: join(dataDir, `replica-${i + 1}`),
      endpoints: endpointsFor(base, i),
    }));
  }
  const list = replicas.map((r) => `${r.id}=${r.endpoints.native}`).join(',');
  const children = new Map<number, ChildProcess>();
  let stopping = false;

  const launch = (r: ClusterReplica): void => {
    const child = spawn(process.execPath, [BIN, 'server', '--id', String(r.id), '--group', String(r.group), '--listen', r.endpoints.native, '--data', r.dataDir, '--replicas', list, ...doorFlags(r.endpoints)], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    children.set(r.id, child);
    r.pid = child.pid ?? 0;
    writeCluster(dataDir, replicas);
    child.on('exit', (code, signal) => {
      children.delete(r.id);
      if (stopping) return;
      if (code === ExitCode.Usage) {
        console.error(`kvs up: replica ${r.id} rejected its configuration; stopping the cluster`);
        process.exitCode = ExitCode.Failed;
        stop();
        return;
      }
      console.error(`kvs up: replica ${r.id} exited (${signal ?? `code ${code}`}); restarting in 1 s`);
      setTimeout(() => {
        if (!stopping) launch(r);
      }, 1000);
    });
  };
  for (const r of replicas) launch(r);

  console.log(`kvs up: ${replicas.length} replicas, data in ${dataDir}`);
  for (const r of replicas) {
    const doors = Object.entries(r.endpoints).map(([door, addr]) => `${door} ${addr}`).join(', ');
    console.log(`  replica ${r.id} (pid ${r.pid}): ${doors}`);
  }
  console.log(`cluster file: ${join(dataDir, 'cluster.json')}   try: kvs put hello world && kvs get hello`);

  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    console.error('kvs up: stopping replicas');
    for (const c of children.values()) c.kill('SIGTERM');
    const force = setTimeout(() => {
      for (const c of children.values()) c.kill('SIGKILL');
    }, 5000);
    const wait = setInterval(() => {
      if (children.size === 0) {
        clearInterval(wait);
        clearTimeout(force);
        for (const r of replicas) r.pid = 0;
        writeCluster(dataDir, replicas);
        process.exit(process.exitCode ?? 0);
      }
    }, 50);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  return -1;
}
