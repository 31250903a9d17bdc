// How `kvs up` runs its replicas: one `kvs server` process each, or spread over N `kvs host`
// processes (each replica still a whole server with its own ports and data; host-command.ts).
// Either way the supervisor sees the same thing: a replica starts, has a pid, and ends with a code.
import { ChildProcess, spawn, type SpawnOptions } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { labelLines } from '../log/child-lines.ts';
import { isHostReport, type HostCommand } from './host-protocol.ts';

const BIN = resolve(fileURLToPath(import.meta.url), '../../../bin/kvs.js');

export interface LaunchSpec {
  id: number;
  group: number;
  /** `kvs server` flags. */
  argv: string[];
  /** Prefix of its text log lines (`shard-1/r102`); undefined: its lines pass through as they are. */
  label: string | undefined;
}

/** Why a replica ended: its exit code, or the signal that killed its process. */
export type OnExit = (code: number | null, signal: NodeJS.Signals | null) => void;
/** The replica started: it listens on its doors. */
export type OnStarted = () => void;

export interface ReplicaLauncher {
  /**
   * Starts a replica; returns the pid of the process that runs it. `onExit` is called once;
   * `onStarted` once it has started, where the launcher can tell (SharedHosts; not ProcessPerReplica).
   */
  launch(spec: LaunchSpec, onExit: OnExit, onStarted?: OnStarted): number;
  /** Stops one replica gracefully (a leader hands over first); resolves once it is gone. */
  stop(id: number): Promise<void>;
  /** Stops every replica gracefully. */
  stopAll(): Promise<void>;
  /** Kills every process at once (SIGKILL). */
  killAll(): void;
}

/**
 * Calls `gone` once when the child exits, or when it never started: a failed spawn (ENOENT,
 * EAGAIN, EMFILE) emits 'error' and 'close' but never 'exit', and unheard it crashed kvs up.
 * Other errors of a running child (an IPC write to a host that just died) are its exit's to report.
 */
function onGone(child: ChildProcess, gone: (code: number | null, signal: NodeJS.Signals | null, spawnError?: Error) => void): void {
  let called = false;
  const once = (code: number | null, signal: NodeJS.Signals | null, e?: Error): void => {
    if (called) return;
    called = true;
    gone(code, signal, e);
  };
  child.on('exit', (code, signal) => once(code, signal));
  child.on('error', (e) => {
    if (child.pid === undefined) once(null, null, e);
  });
}

/**
 * spawn, with the failures Node throws (E2BIG, EPERM, ENOMEM; unlike ENOENT or EAGAIN, which it
 * emits) turned into the failed spawn onGone hears: a child without a pid that emits 'error'.
 * Thrown, one in a restart timer crashed kvs up. Either way a failed child's kill() signals nothing.
 */
export function spawnChild(cmd: string, args: string[], opts: SpawnOptions): ChildProcess {
  let child: ChildProcess;
  try {
    child = spawn(cmd, args, opts);
  } catch (e) {
    const failed = new ChildProcess();
    process.nextTick(() => failed.emit('error', e));
    child = failed;
  }
  const kill = child.kill.bind(child);
  child.kill = (signal) => spawned(child) && kill(signal);
  return child;
}

/**
 * Whether Node spawned the child (it has a pid): the one guard for one it did not (a spawn that
 * failed, thrown or emitted). Such a child never emits 'exit' (running), and its process handle's
 * kill() would signal whatever pid the handle's unset memory holds, 0 (our own process group)
 * included: the stand-in's handle for good, Node's own failed child's until its 'error' (spawnChild).
 */
function spawned(c: ChildProcess): boolean {
  return c.pid !== undefined;
}

/** A child that runs: spawned and not exited (an 'exit' will come). */
function running(c: ChildProcess | undefined): c is ChildProcess {
  return c !== undefined && spawned(c) && c.exitCode === null && c.signalCode === null;
}

function gracefulExit(c: ChildProcess | undefined): Promise<void> {
  if (!running(c)) return Promise.resolve();
  return new Promise((done) => {
    c.once('exit', () => done());
    c.kill('SIGTERM');
  });
}

/** One `kvs server` process per replica: the Kubernetes layout, and `--processes each`. */
export class ProcessPerReplica implements ReplicaLauncher {
  private readonly children = new Map<number, ChildProcess>();

  /** `node`: the program that runs bin/kvs.js (tests give one that does not exist). */
  constructor(private readonly node: string = process.execPath) {}

  launch(spec: LaunchSpec, onExit: OnExit): number {
    const child = spawnChild(this.node, [BIN, 'server', ...spec.argv], { stdio: ['ignore', 'inherit', spec.label ? 'pipe' : 'inherit'] });
    if (child.stderr && spec.label) labelLines(child.stderr, spec.label, (l) => void process.stderr.write(l));
    this.children.set(spec.id, child);
    onGone(child, (code, signal, spawnError) => {
      if (this.children.get(spec.id) === child) this.children.delete(spec.id);
      if (spawnError) console.error(`kvs up: replica ${spec.id}: cannot start its process (${spawnError.message})`);
      onExit(code, signal);
    });
    return child.pid ?? 0;
  }

  stop(id: number): Promise<void> {
    return gracefulExit(this.children.get(id));
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.children.values()].map(gracefulExit));
  }

  killAll(): void {
    for (const c of this.children.values()) if (running(c)) c.kill('SIGKILL');
  }
}

interface Hosted {
  onExit: OnExit;
  onStarted: OnStarted | undefined;
  /** Resolves a pending stop() once the host reports the replica gone. */
  gone: (() => void)[];
}

interface Host {
  child: ChildProcess | undefined;
  replicas: Map<number, Hosted>;
}

/**
 * Replicas spread over `count` host processes. A replica keeps its host across restarts; a new
 * one goes to the host with the fewest replicas of its group, then the fewest replicas, so that
 * with R replicas per group and R hosts every host holds one replica of every group, and killing
 * one host costs every group one replica, never a quorum.
 */
export class SharedHosts implements ReplicaLauncher {
  private readonly hosts: Host[];
  /** Replica id → host index, and its group (for placing the next one). */
  private readonly assigned = new Map<number, { host: number; group: number }>();

  constructor(
    count: number,
    /** A command prefix for host k (e.g. `ip netns exec ns-k`, `taskset -c k`): none by default. */
    private readonly wrap: (host: number) => string[] = () => [],
    /**
     * The directory of host k's shared storage environment: its new replicas keep their stores
     * there (kvs server --shared-data), so one flush covers all of them. None: a store each.
     */
    private readonly sharedData?: (host: number) => string,
  ) {
    this.hosts = Array.from({ length: count }, () => ({ child: undefined, replicas: new Map() }));
  }

  /** The host a replica runs on (placing it on first use). */
  hostOf(id: number, group: number): number {
    const known = this.assigned.get(id);
    if (known) return known.host;
    const load = this.hosts.map((_, k) => {
      const on = [...this.assigned.values()].filter((a) => a.host === k);
      return { k, sameGroup: on.filter((a) => a.group === group).length, all: on.length };
    });
    load.sort((a, b) => a.sameGroup - b.sameGroup || a.all - b.all || a.k - b.k);
    const host = load[0]!.k;
    this.assigned.set(id, { host, group });
    return host;
  }

  /**
   * Puts a replica not placed yet on host `host` (a rebalance adds one where its group lacks one:
   * replica-spread.ts); a replica already placed keeps its host, as its store stays there.
   */
  place(id: number, group: number, host: number): number {
    if (!this.assigned.has(id) && Number.isInteger(host) && host >= 0 && host < this.hosts.length) this.assigned.set(id, { host, group });
    return this.hostOf(id, group);
  }

  /** Forgets a replica that left for good, so that it no longer counts where new ones go. */
  forget(id: number): void {
    this.assigned.delete(id);
  }

  /** How many host processes there are. */
  get count(): number {
    return this.hosts.length;
  }

  /** Asks replica `id` (if it leads) to hand leadership to replica `to` of its group. */
  leadAway(id: number, to: number): void {
    const child = this.hosts.find((h) => h.replicas.has(id))?.child;
    if (child) this.command(child, { type: 'lead-away', id, to });
  }

  launch(spec: LaunchSpec, onExit: OnExit, onStarted?: OnStarted): number {
    const k = this.hostOf(spec.id, spec.group);
    const host = this.hosts[k]!;
    const child = host.child ?? this.spawnHost(host, k);
    host.replicas.set(spec.id, { onExit, onStarted, gone: [] });
    const argv = this.sharedData ? [...spec.argv, '--shared-data', this.sharedData(k)] : spec.argv;
    this.command(child, { type: 'start', id: spec.id, argv, label: spec.label ?? '' });
    return child.pid ?? 0;
  }

  private spawnHost(host: Host, k: number): ChildProcess {
    // Text labels are written by the host itself, per replica (host-command.ts).
    const [cmd, ...args] = [...this.wrap(k), process.execPath, BIN, 'host'];
    const child = spawnChild(cmd!, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    host.child = child;
    child.on('message', (m: unknown) => {
      if (!isHostReport(m)) return;
      const r = host.replicas.get(m.id);
      if (!r) return;
      if (m.type === 'started') {
        r.onStarted?.();
        return;
      }
      host.replicas.delete(m.id);
      if (m.error) console.error(`kvs up: replica ${m.id}: ${m.error}`);
      r.onExit(m.code, null);
      for (const done of r.gone) done();
    });
    // A host that could not start reports its replicas as exited, so kvs up restarts them (with
    // a new host process) instead of waiting for an exit that never comes.
    onGone(child, (code, signal, spawnError) => {
      if (host.child === child) host.child = undefined;
      if (spawnError) console.error(`kvs up: host process ${k}: cannot start (${spawnError.message})`);
      const lost = [...host.replicas.values()];
      host.replicas.clear();
      for (const r of lost) {
        r.onExit(code, signal);
        for (const done of r.gone) done();
      }
    });
    return child;
  }

  private command(child: ChildProcess, c: HostCommand): void {
    if (child.connected) child.send(c, () => undefined);
  }

  stop(id: number): Promise<void> {
    const host = this.hosts.find((h) => h.replicas.has(id));
    const r = host?.replicas.get(id);
    if (!host?.child || !r) return Promise.resolve();
    const child = host.child;
    return new Promise((done) => {
      r.gone.push(done);
      this.command(child, { type: 'stop', id });
    });
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.hosts.map((h) => gracefulExit(h.child)));
  }

  killAll(): void {
    for (const h of this.hosts) if (running(h.child)) h.child.kill('SIGKILL');
  }
}
