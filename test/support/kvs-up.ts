// `kvs up` as a user runs it, for tests: started in a fresh directory with JSON log lines, its
// output kept, ready when it says so, its cluster.json read back, stopped with SIGINT (a graceful
// stop of every replica) and its directory removed.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ClusterReplica } from '../../src/cli/cluster-file.ts';
import { reapOnExit } from './processes.ts';
import { waitFor } from './wait.ts';

const BIN = resolve(import.meta.dirname, '../../bin/kvs.js');

export class KvsUp {
  readonly dir = mkdtempSync(join(tmpdir(), 'kvs-up-'));
  readonly data: string;
  readonly clusterFile: string;
  /** Everything it printed (stdout and stderr). */
  output = '';
  private proc: ChildProcess | undefined;

  /** `dataName`: the data directory's name inside the fresh directory (a long one for a long path). */
  constructor(dataName = 'data') {
    this.data = join(this.dir, dataName);
    this.clusterFile = join(this.data, 'cluster.json');
  }

  /** Starts `kvs up --data <fresh dir> --log-format json ...args`. */
  start(args: string[]): this {
    this.proc = reapOnExit(spawn(process.execPath, [BIN, 'up', '--data', this.data, '--log-format', 'json', ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
    this.proc.stdout!.on('data', (b: Buffer) => (this.output += b.toString()));
    this.proc.stderr!.on('data', (b: Buffer) => (this.output += b.toString()));
    return this;
  }

  ready(timeoutMs: number): Promise<true> {
    return waitFor('kvs up ready', () => this.output.includes('kvs up: ready') || undefined, timeoutMs, 100);
  }

  /** The replicas cluster.json lists now. */
  replicas(): ClusterReplica[] {
    return (JSON.parse(readFileSync(this.clusterFile, 'utf8')) as { replicas: ClusterReplica[] }).replicas;
  }

  /** Sends `signal` to the supervisor itself (SIGSTOP/SIGCONT: hold its restarts back for a while). */
  signal(signal: NodeJS.Signals): void {
    this.proc?.kill(signal);
  }

  /** Stops kvs up (SIGINT), keeping its directory (to start it again). */
  async halt(): Promise<void> {
    this.proc?.kill('SIGCONT'); // a stopped supervisor would never handle the SIGINT
    const p = this.proc;
    if (p && p.exitCode === null && p.signalCode === null) {
      const gone = new Promise((r) => p.once('exit', r));
      p.kill('SIGINT');
      await gone;
    }
  }

  async stop(): Promise<void> {
    await this.halt();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
