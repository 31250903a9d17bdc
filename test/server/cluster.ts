// Real replica processes for end-to-end tests: start, kill -9, restart (optionally from an empty
// data dir), find the leader. Each test file passes its own port range so files can run at once.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { KvsClient } from '../../src/client/client.ts';
import type { StatusInfo } from '../../src/wire/index.ts';
import { ProcessTable } from '../support/processes.ts';

const BIN = resolve(import.meta.dirname, '../../bin/kvs.js');

export interface ClusterOptions {
  replicas?: number;
  basePort: number;
  /** Extra `kvs server` flags for every replica. */
  args?: string[];
  /** A command the replica runs under, e.g. setpriv with its flags (ending in `--`), or one per replica. */
  wrap?: string[] | ((id: number) => string[]);
  /** Each replica's IP address (default 127.0.0.1), e.g. in a network namespace of its own. */
  host?: (id: number) => string;
  env?: NodeJS.ProcessEnv;
  /** Keep each replica's stdout lines in `stdout` (otherwise discarded). */
  captureStdout?: boolean;
  /** Start each replica's HTTP door too, at httpAddress(id). */
  http?: boolean;
}

export class TestCluster {
  readonly dir: string;
  readonly ids: number[];
  private readonly procs = new ProcessTable();
  private readonly opts: ClusterOptions;
  readonly logs = this.procs.logs;
  readonly stdout = this.procs.stdout;

  private constructor(opts: ClusterOptions) {
    this.opts = opts;
    this.dir = mkdtempSync(join(tmpdir(), 'kvs-test-'));
    this.ids = Array.from({ length: opts.replicas ?? 3 }, (_, i) => i + 1);
  }

  static async start(opts: ClusterOptions): Promise<TestCluster> {
    const c = new TestCluster(opts);
    for (const id of c.ids) c.spawn(id);
    await c.waitForLeader();
    return c;
  }

  address(id: number): string {
    return `${this.opts.host?.(id) ?? '127.0.0.1'}:${this.opts.basePort + id}`;
  }

  /** The replica's HTTP door (with `http`): its port is basePort + 50 + id. */
  httpAddress(id: number): string {
    return `${this.opts.host?.(id) ?? '127.0.0.1'}:${this.opts.basePort + 50 + id}`;
  }

  endpoints(): string[] {
    return this.ids.map((id) => this.address(id));
  }

  dataDir(id: number): string {
    return join(this.dir, `replica-${id}`);
  }

  client(opts: { endpoints?: string[]; timeoutMs?: number } = {}): KvsClient {
    return new KvsClient({ endpoints: opts.endpoints ?? this.endpoints(), timeoutMs: opts.timeoutMs ?? 5000 });
  }

  /** The replica's process id while it runs. */
  pid(id: number): number | undefined {
    return this.procs.pid(id);
  }

  isRunning(id: number): boolean {
    return this.procs.isRunning(id);
  }

  private spawn(id: number): void {
    const replicas = this.ids.map((i) => `${i}=${this.address(i)}`).join(',');
    const wrap = typeof this.opts.wrap === 'function' ? this.opts.wrap(id) : (this.opts.wrap ?? []);
    const [cmd, ...prefix] = [...wrap, process.execPath];
    const child = spawn(
      cmd!,
      [...prefix, BIN, 'server', '--id', String(id), '--listen', this.address(id), '--data', this.dataDir(id), '--replicas', replicas, ...(this.opts.http ? ['--http', this.httpAddress(id)] : []), ...(this.opts.args ?? [])],
      { stdio: ['ignore', this.opts.captureStdout ? 'pipe' : 'ignore', 'pipe'], env: this.opts.env ?? process.env },
    );
    this.procs.track(id, child, this.opts.captureStdout);
  }

  /** Sends a signal without waiting (SIGSTOP/SIGCONT). */
  signal(id: number, signal: NodeJS.Signals): void {
    this.procs.signal(id, signal);
  }

  /** kill -9 (or another signal) and wait for the process to be gone. */
  kill(id: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    return this.procs.kill(id, signal);
  }

  async restart(id: number, opts: { wipe?: boolean } = {}): Promise<void> {
    await this.kill(id);
    if (opts.wipe) rmSync(this.dataDir(id), { recursive: true, force: true });
    this.spawn(id);
    await this.waitForStatus(id);
  }

  status(id: number): Promise<StatusInfo | undefined> {
    return replicaStatus(this.address(id));
  }

  async waitForStatus(id: number, timeoutMs = 15_000): Promise<StatusInfo> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      const s = await this.status(id);
      if (s) return s;
      await sleep(50);
    }
    throw new Error(`replica ${id} did not come up; log:\n${(this.logs.get(id) ?? []).join('')}`);
  }

  /** The leader a majority of running replicas agree on, once it answers as leader. */
  async waitForLeader(timeoutMs = 15_000, except?: number): Promise<StatusInfo> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      const all = (await Promise.all(this.ids.filter((id) => this.isRunning(id)).map((id) => this.status(id)))).filter((s): s is StatusInfo => !!s);
      const leader = all.find((s) => s.role === 'leader' && s.replicaId !== except);
      if (leader && all.filter((s) => s.leaderId === leader.replicaId && s.term === leader.term).length > this.ids.length / 2) return leader;
      await sleep(50);
    }
    throw new Error(`no leader within ${timeoutMs} ms`);
  }

  async stop(): Promise<void> {
    await this.procs.killAll();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A replica's own view (role, term, leader, indexes), or undefined if it does not answer. */
export async function replicaStatus(address: string): Promise<StatusInfo | undefined> {
  const c = new KvsClient({ endpoints: [address], timeoutMs: 300 });
  try {
    return await c.status(address);
  } catch {
    return undefined;
  } finally {
    c.close();
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
