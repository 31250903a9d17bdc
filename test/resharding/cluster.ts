// A sharded cluster of real processes for tests: a placement group and shard groups, each group a
// TestCluster-like set of replicas; groups can be added, removed and their replicas killed.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { KvsClient } from '../../src/client/client.ts';
import type { GroupInfo } from '../../src/placement/config.ts';
import { initCluster } from '../../src/resharding/admin.ts';
import type { StatusInfo } from '../../src/wire/index.ts';
import { replicaStatus } from '../server/cluster.ts';
import { ProcessTable } from '../support/processes.ts';
import { SharedHosts } from '../../src/cli/replica-launcher.ts';

const BIN = resolve(import.meta.dirname, '../../bin/kvs.js');

export const PLACEMENT = 0;

export class ShardedCluster {
  readonly dir = mkdtempSync(join(tmpdir(), 'kvs-shards-'));
  private readonly procs = new ProcessTable();
  readonly logs = this.procs.logs;
  readonly groups = new Map<number, GroupInfo>();

  constructor(
    private readonly basePort: number,
    private readonly replicasPerGroup: number,
    /** Start each replica's HTTP door (for /metrics) at its native port + 200. */
    private readonly opts: {
      http?: boolean;
      serverArgs?: string[];
      /** Each replica's IP address by replica id (default 127.0.0.1), e.g. in a network namespace. */
      host?: (id: number) => string;
      /** The command a replica runs under, by replica id (e.g. `ip netns exec NS`). */
      wrap?: (id: number) => string[];
      /**
       * Run the replicas in this many `kvs host` processes, as `kvs up --processes N` does, instead
       * of one `kvs server` each (then replicas cannot be killed one by one).
       */
      hosts?: number;
    } = {},
  ) {
    this.shared = opts.hosts ? new SharedHosts(opts.hosts, undefined, (k) => join(this.dir, `p${k}`)) : undefined;
  }

  private readonly shared: SharedHosts | undefined;

  /**
   * Placement group plus shard groups 1..n, and the first configuration; returns once every shard
   * replica has applied it (until then a group answers WRONG_GROUP for the keys it is to own).
   */
  async start(shardGroups: number, partitions = 64): Promise<void> {
    this.startGroup(PLACEMENT);
    await this.waitForLeader(PLACEMENT);
    for (let g = 1; g <= shardGroups; g++) this.defineGroup(g);
    const config = await initCluster(this.placement(), [...this.groups.values()].filter((g) => g.id !== PLACEMENT), partitions);
    for (let g = 1; g <= shardGroups; g++) this.startGroup(g);
    for (let g = 1; g <= shardGroups; g++) await this.waitForLeader(g);
    for (let g = 1; g <= shardGroups; g++) await this.waitForEpoch(g, config.epoch);
  }

  /** Waits until every replica of group `g` has applied configuration `epoch` (or a later one). */
  async waitForEpoch(g: number, epoch: number, timeoutMs = 30_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    const info = this.groups.get(g)!;
    for (;;) {
      const seen = await Promise.all(info.replicas.map((r) => this.status(r.address)));
      if (seen.every((s) => s !== undefined && s.epoch >= epoch)) return;
      if (Date.now() > until) throw new Error(`group ${g} did not apply epoch ${epoch}: saw ${seen.map((s) => s?.epoch ?? 'no answer').join(', ')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  placement(): string[] {
    return this.groups.get(PLACEMENT)!.replicas.map((r) => r.address);
  }

  /** Every shard replica's native address (any replica serves any key). */
  endpoints(): string[] {
    return [...this.groups.values()].filter((g) => g.id !== PLACEMENT).flatMap((g) => g.replicas.map((r) => r.address));
  }

  shardGroups(ids: number[]): GroupInfo[] {
    return ids.map((id) => this.groups.get(id) ?? this.defineGroup(id));
  }

  client(timeoutMs = 10_000): KvsClient {
    return new KvsClient({ endpoints: this.endpoints(), timeoutMs });
  }

  private defineGroup(g: number): GroupInfo {
    const info: GroupInfo = {
      id: g,
      replicas: Array.from({ length: this.replicasPerGroup }, (_, i) => ({ id: g * 100 + i + 1, address: `${this.opts.host?.(g * 100 + i + 1) ?? '127.0.0.1'}:${this.basePort + g * 10 + i}` })),
    };
    this.groups.set(g, info);
    return info;
  }

  startGroup(g: number): void {
    const info = this.groups.get(g) ?? this.defineGroup(g);
    for (const r of info.replicas) this.spawn(g, r.id);
  }

  spawn(g: number, id: number): void {
    const info = this.groups.get(g)!;
    const me = info.replicas.find((r) => r.id === id)!;
    const args = [BIN, 'server', '--id', String(id), '--group', String(g), '--listen', me.address, '--data', join(this.dir, `r${id}`), '--replicas', info.replicas.map((r) => `${r.id}=${r.address}`).join(',')];
    if (g !== PLACEMENT) args.push('--placement', this.placement().join(','));
    if (this.opts.http) args.push('--http', this.httpAddress(me.address));
    if (this.opts.serverArgs) args.push(...this.opts.serverArgs);
    if (this.shared) {
      this.shared.launch({ id, group: g, argv: args.slice(2), label: undefined }, () => undefined);
      return;
    }
    const [cmd, ...prefix] = [...(this.opts.wrap?.(id) ?? []), process.execPath];
    this.procs.track(id, spawn(cmd!, [...prefix, ...args], { stdio: ['ignore', 'ignore', 'pipe'] }));
  }

  /**
   * Starts replica `id` of group `g` at `address` with --join (outside the group's configuration,
   * waiting to be added); it learns the group's other replicas from the placement configuration.
   */
  spawnJoiner(g: number, id: number, address: string): void {
    const args = [BIN, 'server', '--id', String(id), '--group', String(g), '--listen', address, '--data', join(this.dir, `r${id}`), '--join', '--placement', this.placement().join(',')];
    this.procs.track(id, spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] }));
  }

  /**
   * Restarts replica `id` of group `g` on its data with only itself in --replicas (as a pod of a
   * StatefulSet that was grown later starts): it must find the rest of its group on its own.
   * `replicas` overrides the list (e.g. a stale one).
   */
  restart(g: number, id: number, address: string, replicas = [{ id, address }]): void {
    const list = replicas.map((r) => `${r.id}=${r.address}`).join(',');
    const args = [BIN, 'server', '--id', String(id), '--group', String(g), '--listen', address, '--data', join(this.dir, `r${id}`), '--replicas', list];
    if (g !== PLACEMENT) args.push('--placement', this.placement().join(','));
    this.procs.track(id, spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] }));
  }

  kill(id: number): Promise<void> {
    if (this.shared) throw new Error('replicas in host processes are not killed one by one');
    return this.procs.kill(id);
  }

  async stopGroup(g: number): Promise<void> {
    for (const r of this.groups.get(g)?.replicas ?? []) await this.kill(r.id);
  }

  /** The HTTP door of the replica at native `address` (with `{ http: true }`). */
  httpAddress(address: string): string {
    const [host, port] = address.split(':');
    return `${host}:${Number(port) + 200}`;
  }

  status(address: string): Promise<StatusInfo | undefined> {
    return replicaStatus(address);
  }

  async waitForLeader(g: number, timeoutMs = 30_000): Promise<StatusInfo> {
    const until = Date.now() + timeoutMs;
    const info = this.groups.get(g)!;
    while (Date.now() < until) {
      for (const r of info.replicas) {
        const s = await this.status(r.address);
        if (s?.role === 'leader') return s;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`group ${g} elected no leader; logs:\n${info.replicas.map((r) => (this.logs.get(r.id) ?? []).join('')).join('\n')}`);
  }

  async stop(): Promise<void> {
    if (this.shared) this.shared.killAll();
    await this.procs.killAll();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
