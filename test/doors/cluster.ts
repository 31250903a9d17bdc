// A 3-replica group of real `kvs server` processes with every front door, for the door tests.
// Each test file passes its own base port (ports: native base+id, RESP base+10+id, gRPC
// base+20+id, HTTP base+30+id), so files can run at once. stop() kills everything it started.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { StatusInfo } from '../../src/wire/index.ts';
import { replicaStatus } from '../server/cluster.ts';
import { ProcessTable } from '../support/processes.ts';

const BIN = resolve(import.meta.dirname, '../../bin/kvs.js');

export type DoorName = 'native' | 'resp' | 'grpc' | 'http';
const OFFSET: Record<DoorName, number> = { native: 0, resp: 10, grpc: 20, http: 30 };

export class DoorCluster {
  readonly dir = mkdtempSync(join(tmpdir(), 'kvs-doors-'));
  readonly ids = [1, 2, 3];
  private readonly procs = new ProcessTable();
  readonly logs = this.procs.logs;

  private constructor(
    readonly basePort: number,
    /** The replicas' environment (e.g. KVS_HTTP_IMPL). */
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  static async start(basePort: number, env?: NodeJS.ProcessEnv): Promise<DoorCluster> {
    const c = new DoorCluster(basePort, env);
    try {
      for (const id of c.ids) c.spawn(id);
      await c.waitForLeader();
    } catch (e) {
      await c.stop();
      throw e;
    }
    return c;
  }

  port(id: number, door: DoorName): number {
    return this.basePort + OFFSET[door] + id;
  }

  address(id: number, door: DoorName = 'native'): string {
    return `127.0.0.1:${this.port(id, door)}`;
  }

  spawn(id: number): void {
    const replicas = this.ids.map((i) => `${i}=${this.address(i)}`).join(',');
    const args = [BIN, 'server', '--id', String(id), '--listen', this.address(id), '--data', join(this.dir, `r${id}`), '--replicas', replicas];
    args.push('--resp', this.address(id, 'resp'), '--grpc', this.address(id, 'grpc'), '--http', this.address(id, 'http'));
    this.procs.track(id, spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: this.env }));
  }

  isRunning(id: number): boolean {
    return this.procs.isRunning(id);
  }

  kill(id: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    return this.procs.kill(id, signal);
  }

  /** SIGSTOP / SIGCONT: the process keeps its sockets but stops answering. */
  signal(id: number, signal: 'SIGSTOP' | 'SIGCONT'): void {
    this.procs.signal(id, signal);
  }

  status(id: number): Promise<StatusInfo | undefined> {
    return replicaStatus(this.address(id));
  }

  /** Waits until a majority agrees on a leader that answers as leader. */
  async waitForLeader(timeoutMs = 20_000): Promise<StatusInfo> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      const all = (await Promise.all(this.ids.filter((id) => this.isRunning(id)).map((id) => this.status(id)))).filter((s): s is StatusInfo => !!s);
      const leader = all.find((s) => s.role === 'leader');
      if (leader && all.filter((s) => s.leaderId === leader.replicaId && s.term === leader.term).length >= 2) return leader;
      await sleep(50);
    }
    throw new Error(`no leader within ${timeoutMs} ms; logs:\n${this.procs.allLogs()}`);
  }

  /** Waits until a replica's native door answers. */
  async waitForStatus(id: number, timeoutMs = 20_000): Promise<StatusInfo> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      const s = await this.status(id);
      if (s) return s;
      await sleep(50);
    }
    throw new Error(`replica ${id} did not come up; log:\n${(this.logs.get(id) ?? []).join('')}`);
  }

  async stop(): Promise<void> {
    await this.procs.killAll();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
