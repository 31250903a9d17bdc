// A bounded chaos run against the default `kvs up` cluster (3 host processes, the placement group
// and 3 shard groups), run by hand (not in `make test`). A recorded workload of puts, gets, CAS and
// deletes over a few hundred keys goes through the sharded client and through RESP doors while a
// nemesis, one fault at a time, picks: kill -9 of a host process (kvs up restarts it), kill -9 of
// the `kvs up` supervisor (its hosts stop by themselves) and a new one on the same data dir, a
// partition of one host process (iptables, as test/doors/resp-faults.test.ts does it), a SIGSTOP
// of a few seconds, and now and then a `kvs reshard` 3 -> 4 -> 3 in the background. After every
// fault heals, every group must be led again with every replica caught up within a bound; at the
// end every key is read once more and the whole history must be linearizable (test/lin).
//
// Needs root, iptables and ss. Run it in a network namespace of its own, niced and bounded:
//   unshare -n bash -c 'ip link set lo up; nice -n 10 timeout 1500 node --import tsx bench/chaos.ts --seed 7 --minutes 10'
// Everything (kvs up's output, the nemesis' log, the history) goes to --out (default
// /tmp/kvs-chaos-<seed>); the data directory is removed after a clean run. Exit code 1: anomalies.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, rmSync, writeFileSync, type WriteStream } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { KvsClient, KvsError } from '../src/client/client.ts';
import { ShardedClient } from '../src/client/sharded-client.ts';
import { dataReplicas, placementEndpoints, type ClusterReplica } from '../src/cli/cluster-file.ts';
import { checkHistory } from '../test/lin/check.ts';
import type { Operation } from '../test/lin/history.ts';
import { Rng } from '../test/sim/prng.ts';
import { RespClient } from '../test/doors/resp-client.ts';
import { createChain, dropDialed, dropPorts, iptables, portOf, removeChain } from '../test/support/loopback-cut.ts';

const run = promisify(execFile);
const BIN = resolve(import.meta.dirname, '../bin/kvs.js');
const CHAIN = 'KVS_CHAOS';

const { values: argv } = parseArgs({
  options: {
    seed: { type: 'string', default: String(Date.now() % 100_000) },
    minutes: { type: 'string', default: '10' },
    keys: { type: 'string', default: '300' },
    out: { type: 'string' },
    'base-port': { type: 'string', default: '7001' },
    'recover-ms': { type: 'string', default: '60000' },
    overlap: { type: 'string', default: '0' },
    'reshard-pct': { type: 'string', default: '8' },
  },
});
const SEED = Number(argv.seed);
const RUN_MS = Number(argv.minutes) * 60_000;
const KEYS = Array.from({ length: Number(argv.keys) }, (_, i) => `k${i}`);
const OUT = argv.out ?? `/tmp/kvs-chaos-${SEED}`;
const BASE_PORT = Number(argv['base-port']);
/** After a fault heals, every group must be led and caught up within this. */
const RECOVER_MS = Number(argv['recover-ms']);
/** A restarted supervisor must say ready within this. */
const READY_MS = 120_000;
/** The chance that the next fault comes without waiting for the last one's recovery (faults overlap). */
const OVERLAP = Number(argv.overlap);
/** Percent of the nemesis' picks that start a reshard (when none runs). */
const RESHARD_PCT = Number(argv['reshard-pct']);

rmSync(OUT, { recursive: true, force: true });
mkdirSync(OUT, { recursive: true });
const DATA = join(OUT, 'data');
const nemesisLog = createWriteStream(join(OUT, 'nemesis.log'));
const anomalies: string[] = [];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const t0 = performance.now();
/** Microseconds since the start: the history's clock. */
const now = (): number => Math.round((performance.now() - t0) * 1000);
const stamp = (): string => `${(now() / 1e6).toFixed(1)}s`;
function log(line: string): void {
  const l = `${stamp()} ${line}`;
  nemesisLog.write(l + '\n');
  console.log(l);
}
function anomaly(line: string): void {
  anomalies.push(`${stamp()} ${line}`);
  log(`ANOMALY: ${line}`);
}


async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, ms: number, every = 200): Promise<T | undefined> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > until) return undefined;
    await sleep(every);
  }
}

/** `kvs up` on DATA: started, killed -9, started again; its output appended to up.log. */
class Supervisor {
  private proc: ChildProcess | undefined;
  private output = '';
  private readonly file: WriteStream = createWriteStream(join(OUT, 'up.log'));
  /** The last replica list read from cluster.json (kept while the file is away). */
  private known: ClusterReplica[] = [];
  starts = 0;

  start(): void {
    this.starts++;
    this.output = '';
    this.file.write(`\n===== kvs up start ${this.starts} at ${stamp()} =====\n`);
    const p = spawn(process.execPath, [BIN, 'up', '--data', DATA, '--log-format', 'json', '--base-port', String(BASE_PORT)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const take = (b: Buffer): void => {
      const s = b.toString();
      this.output += s;
      this.file.write(s);
      for (const m of s.matchAll(/kvs up: replica (\d+) exited \(([^)]+)\)/g)) this.exits.push(`${stamp()} replica ${m[1]}: ${m[2]}`);
      if (this.output.length > 1 << 20) this.output = this.output.slice(-(1 << 19)); // only "ready" is looked for in it
    };
    p.stdout!.on('data', take);
    p.stderr!.on('data', take);
    p.on('exit', (code, sig) => this.file.write(`\n===== kvs up exited (${code ?? sig}) at ${stamp()} =====\n`));
    this.proc = p;
  }

  /** Every "replica exited" line kvs up printed, with when. */
  readonly exits: string[] = [];

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  async ready(ms: number): Promise<boolean> {
    return (await waitFor('ready', () => (/kvs up: ready/.test(this.output) ? true : undefined), ms, 100)) === true;
  }

  async kill9(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await gone;
  }

  async halt(): Promise<number | string | null> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return p?.exitCode ?? p?.signalCode ?? null;
    const gone = new Promise<number | string | null>((r) => p.once('exit', (c, s) => r(c ?? s)));
    p.kill('SIGINT');
    const t = setTimeout(() => p.kill('SIGKILL'), 60_000);
    const how = await gone;
    clearTimeout(t);
    return how;
  }

  replicas(): ClusterReplica[] {
    try {
      this.known = (JSON.parse(readFileSync(join(DATA, 'cluster.json'), 'utf8')) as { replicas: ClusterReplica[] }).replicas;
    } catch {
      // not published now (a supervisor starting): the last list
    }
    return this.known;
  }

  /** The replicas by host process (pid). */
  processes(): Map<number, ClusterReplica[]> {
    const by = new Map<number, ClusterReplica[]>();
    for (const r of this.replicas()) by.set(r.pid, [...(by.get(r.pid) ?? []), r]);
    return by;
  }

  close(): void {
    this.file.end();
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}


/** What the clients saw. */
class Recorder {
  readonly history: Operation[] = [];
  /** Writes answered with a code the docs say means "not applied": left out of the history. */
  readonly notApplied: Operation[] = [];
  readonly pendingWhy = new Map<string, number>();
  readonly unexpected: string[] = [];
  ok = 0;

  pending(why: string): void {
    this.pendingWhy.set(why, (this.pendingWhy.get(why) ?? 0) + 1);
  }
}

const NOT_APPLIED = new Set(['UNREACHABLE', 'NOT_LEADER', 'UNAVAILABLE', 'WRONG_GROUP']);

/** One sharded-client worker: get 40%, put 25%, cas 20%, delete 15% on random keys. */
async function shardedWorker(id: number, client: ShardedClient, rec: Recorder, rng: Rng, running: () => boolean): Promise<void> {
  const last = new Map<string, string | null>();
  let n = 0;
  const dec = new TextDecoder();
  while (running()) {
    const key = rng.pick(KEYS);
    const r = rng.int(100);
    const op: Operation = { clientId: id, op: r < 40 ? 'get' : r < 65 ? 'put' : r < 85 ? 'cas' : 'delete', key, call: 0, note: 'sharded' };
    if (op.op === 'put' || op.op === 'cas') op.value = `s${id}-${n++}`;
    if (op.op === 'cas') op.expected = last.get(key) ?? null;
    rec.history.push(op);
    op.call = now();
    try {
      if (op.op === 'get') {
        const v = await client.get(key);
        op.output = v === null ? null : dec.decode(v);
        last.set(key, op.output);
      } else if (op.op === 'put') {
        await client.put(key, op.value!);
      } else if (op.op === 'delete') {
        await client.delete(key);
      } else {
        const res = await client.cas(key, op.expected!, op.value!);
        op.output = res.ok;
        last.set(key, res.ok ? op.value! : res.current === null ? null : dec.decode(res.current));
      }
      op.ret = now();
      rec.ok++;
    } catch (e) {
      const code = e instanceof KvsError ? e.code : `thrown ${(e as Error).message}`;
      if (!(e instanceof KvsError)) rec.unexpected.push(`sharded ${op.op} ${key}: ${String(e)}`);
      if (op.op === 'get') rec.history.splice(rec.history.lastIndexOf(op), 1);
      else if (NOT_APPLIED.has(code)) {
        rec.history.splice(rec.history.lastIndexOf(op), 1);
        rec.notApplied.push(op);
      } else rec.pending(`sharded ${code}`);
      await sleep(20);
    }
  }
}

/** One RESP worker: commands one at a time (SET 30%, GET 50%, DEL 20%) on a door picked at random. */
async function respWorker(id: number, up: Supervisor, rec: Recorder, rng: Rng, running: () => boolean): Promise<void> {
  let n = 0;
  let conn: RespClient | undefined;
  while (running()) {
    if (conn === undefined || conn.closed) {
      const doors = dataReplicas(up.replicas()).map((r) => r.endpoints.resp!);
      if (doors.length === 0) {
        await sleep(200);
        continue;
      }
      conn = await RespClient.connect(portOf(rng.pick(doors))).catch(() => undefined);
      if (conn === undefined) {
        await sleep(100);
        continue;
      }
    }
    const c = conn;
    const key = rng.pick(KEYS);
    const r = rng.int(100);
    const op: Operation = { clientId: id, op: r < 30 ? 'put' : r < 80 ? 'get' : 'delete', key, call: 0, note: `RESP :${c.socket.remotePort}` };
    if (op.op === 'put') op.value = `r${id}-${n++}`;
    rec.history.push(op);
    op.call = now();
    const args = op.op === 'put' ? ['SET', key, op.value!] : op.op === 'get' ? ['GET', key] : ['DEL', key];
    let timer: NodeJS.Timeout | undefined;
    const v = await Promise.race([
      c.call(...args).catch(() => undefined),
      new Promise<'late'>((res) => (timer = setTimeout(() => res('late'), 20_000))),
    ]);
    clearTimeout(timer);
    const drop = (): void => void rec.history.splice(rec.history.lastIndexOf(op), 1);
    if (v === undefined || v === 'late' || v.type === 'error') {
      const why = v === undefined ? 'closed' : v === 'late' ? 'no reply in 20 s' : String(v.value).split(' ')[0]!;
      if (v === 'late') rec.unexpected.push(`RESP ${args.join(' ')}: no reply in 20 s on :${c.socket.remotePort}`);
      if (v !== undefined && v !== 'late' && v.type === 'error' && !/^(TRYAGAIN|TIMEOUT)/.test(why)) rec.unexpected.push(`RESP ${args.join(' ')} -> ${String(v.value)}`);
      if (op.op === 'get') drop();
      else if (why === 'TRYAGAIN') {
        drop();
        rec.notApplied.push(op);
      } else rec.pending(`RESP ${why}`);
      if (v === undefined || v === 'late') {
        c.close();
        conn = undefined;
      }
      await sleep(20);
      continue;
    }
    if (op.op === 'get') {
      if (v.type === 'null') op.output = null;
      else if (v.type === 'bulk') op.output = Buffer.from(v.value).toString();
      else {
        rec.unexpected.push(`GET answered ${JSON.stringify(v)}`);
        drop();
        continue;
      }
    } else if (op.op === 'put' && !(v.type === 'simple' && v.value === 'OK')) rec.unexpected.push(`SET answered ${JSON.stringify(v)}`);
    else if (op.op === 'delete' && v.type !== 'int') rec.unexpected.push(`DEL answered ${JSON.stringify(v)}`);
    op.ret = now();
    rec.ok++;
  }
  conn?.close();
}

/**
 * Whether every group is led and every replica answers and has applied what its group's leader
 * had committed when first seen: the time that took (ms), or undefined past `ms`.
 */
async function recovered(up: Supervisor, ms: number): Promise<{ ms: number } | { stuck: string }> {
  const start = Date.now();
  let lastRows = '';
  let target: Map<number, number> | undefined;
  const ok = await waitFor('recovered', async () => {
    const replicas = up.replicas();
    const probe = new KvsClient({ endpoints: replicas.map((r) => r.endpoints.native), timeoutMs: 1500 });
    try {
      const rows = await Promise.all(replicas.map((r) => probe.status(r.endpoints.native).catch(() => undefined)));
      lastRows = replicas.map((r, i) => `${r.id}/g${r.group}:${rows[i] ? `${rows[i]!.role} t${rows[i]!.term} c${rows[i]!.commitIndex} a${rows[i]!.appliedIndex} L${rows[i]!.leaderId}` : 'no answer'}`).join(', ');
      if (rows.some((s) => s === undefined)) return undefined;
      const groups = new Set(replicas.map((r) => r.group));
      const commits = new Map<number, number>();
      for (const s of rows) if (s!.role === 'leader') commits.set(s!.groupId, Math.max(s!.commitIndex, commits.get(s!.groupId) ?? 0));
      if (commits.size !== groups.size) return undefined;
      target ??= commits;
      for (const [g, c] of commits) if (!target.has(g)) target.set(g, c);
      return rows.every((s) => s!.appliedIndex >= (target!.get(s!.groupId) ?? 0)) ? true : undefined;
    } finally {
      probe.close();
    }
  }, ms, 250);
  return ok ? { ms: Date.now() - start } : { stuck: lastRows };
}

/** One fault at a time until stopped. */
class Nemesis {
  readonly counts = { hostKill: 0, supervisorKill: 0, partition: 0, killWhileCut: 0, pause: 0, reshard: 0 };
  readonly recoverMs: number[] = [];
  private running = true;
  private loop: Promise<void> | undefined;
  private reshard: Promise<void> | undefined;
  private reshardActive = false;
  private shards = 3;
  private paused: number | undefined;
  /** A supervisor kill came during the reshard in progress: it may fail (the next one finishes it). */
  private interrupted = false;
  /** The shard count the last reshard that did not complete aimed at. */
  unfinished: number | undefined;

  constructor(
    private readonly up: Supervisor,
    private readonly rng: Rng,
  ) {}

  start(): void {
    createChain(CHAIN);
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    this.heal();
    if (this.reshard) {
      log('waiting for the reshard in progress');
      await this.reshard;
    }
  }

  private heal(): void {
    if (this.paused !== undefined && alive(this.paused)) process.kill(this.paused, 'SIGCONT');
    this.paused = undefined;
    iptables('-F', CHAIN);
  }

  private async afterFault(what: string, bound = RECOVER_MS): Promise<void> {
    if (this.rng.chance(OVERLAP)) {
      log('  (next fault without waiting for recovery)');
      return;
    }
    const r = await recovered(this.up, bound);
    if ('ms' in r) {
      this.recoverMs.push(r.ms);
      log(`  recovered in ${r.ms} ms`);
    } else anomaly(`not recovered ${bound} ms after ${what}: ${r.stuck}`);
  }

  private async run(): Promise<void> {
    await sleep(3000);
    while (this.running) {
      const procs = this.up.processes();
      const pids = [...procs.keys()].filter(alive);
      if (pids.length === 0) {
        await sleep(1000);
        continue;
      }
      const victim = this.rng.pick(pids);
      // While a reshard runs, a supervisor kill is likelier: a reshard cut short must be finishable.
      const roll = this.reshardActive && this.rng.chance(0.3) ? 10 : this.rng.int(100);
      if (roll < 8 && !this.reshardActive) {
        this.startReshard();
      } else if (RESHARD_PCT > 8 && !this.reshardActive && this.rng.int(100) < RESHARD_PCT - 8) {
        this.startReshard();
      } else if (roll < 18) {
        // The supervisor killed -9: its hosts see the IPC channel close and stop their replicas;
        // a new kvs up on the same data dir, at once or after a while.
        const delay = this.rng.chance(0.5) ? 0 : this.rng.int(5000);
        log(`kill -9 kvs up (pid ${this.up.pid}), start it again after ${delay} ms`);
        this.counts.supervisorKill++;
        if (this.reshardActive) this.interrupted = true;
        await this.up.kill9();
        await sleep(delay);
        this.up.start();
        if (!(await this.up.ready(READY_MS))) anomaly(`kvs up not ready ${READY_MS} ms after a restart`);
        await this.afterFault('a supervisor restart');
      } else if (roll < 45) {
        log(`kill -9 host ${victim} (replicas ${procs.get(victim)!.map((r) => r.id).join(',')})`);
        this.counts.hostKill++;
        process.kill(victim, 'SIGKILL');
        const back = await waitFor('restarted', () => (this.up.processes().size === 3 && !this.up.processes().has(victim) ? true : undefined), 30_000, 100);
        if (!back) anomaly(`host ${victim} not restarted within 30 s`);
        await this.afterFault(`kill -9 of host ${victim}`);
      } else if (roll < 75) {
        const ms = 2000 + this.rng.int(8000);
        const killAt = this.rng.chance(0.2) ? 500 + this.rng.int(ms - 1000) : undefined;
        log(`cut host ${victim} off for ${ms} ms${killAt === undefined ? '' : `, killed after ${killAt} ms`}`);
        this.counts.partition++;
        await this.cut(victim, procs, ms, killAt);
        this.heal();
        if (killAt !== undefined) {
          this.counts.killWhileCut++;
          await waitFor('restarted', () => (this.up.processes().size === 3 && !this.up.processes().has(victim) ? true : undefined), 30_000, 100);
        }
        await this.afterFault(`a partition of host ${victim}`);
      } else {
        const ms = 1000 + this.rng.int(5000);
        log(`pause host ${victim} for ${ms} ms`);
        this.counts.pause++;
        this.paused = victim;
        process.kill(victim, 'SIGSTOP');
        await sleep(ms);
        process.kill(victim, 'SIGCONT');
        this.paused = undefined;
        await this.afterFault(`a pause of host ${victim}`);
      }
      await sleep(1000 + this.rng.int(4000));
    }
  }

  private startReshard(): void {
    this.shards = this.shards === 3 ? 4 : 3;
    const n = this.shards;
    this.counts.reshard++;
    this.reshardActive = true;
    log(`kvs reshard --shards ${n} (in the background)`);
    const started = Date.now();
    this.reshard = run(process.execPath, [BIN, 'reshard', '--shards', String(n), '--data', DATA], { timeout: 300_000, maxBuffer: 16 << 20 })
      .then(
        () => {
          log(`reshard to ${n} done in ${Date.now() - started} ms`);
          this.unfinished = undefined;
        },
        (e: { stdout?: string; stderr?: string; code?: number; signal?: string }) => {
          const what = `kvs reshard --shards ${n} failed (${e.code ?? e.signal}) after ${Date.now() - started} ms: ${(e.stderr ?? '').slice(-2000)}`;
          if (this.interrupted) log(`(kvs up was killed during it) ${what}`);
          else anomaly(what);
          this.unfinished = n;
          this.shards = n === 4 ? 3 : 4; // the same again next time
        },
      )
      .finally(() => {
        this.reshardActive = false;
        this.interrupted = false;
      });
  }

  /** As test/doors/resp-faults.test.ts: its native ports, and the connections it dialed (ss). */
  private async cut(victim: number, procs: Map<number, ClusterReplica[]>, ms: number, killAt?: number): Promise<void> {
    const one = procs.get(victim)![0]!.id;
    const mine = procs.get(victim)!.map((r) => portOf(r.endpoints.native));
    const others = new Set([...procs].filter(([p]) => p !== victim).flatMap(([, rs]) => rs.map((r) => portOf(r.endpoints.native))));
    dropPorts(CHAIN, mine);
    const dropped = new Set<string>();
    const start = Date.now();
    let killed = false;
    while (Date.now() < start + ms) {
      if (killAt !== undefined && !killed && Date.now() >= start + killAt) {
        const pid = this.up.replicas().find((r) => r.id === one)?.pid;
        if (pid !== undefined && alive(pid)) process.kill(pid, 'SIGKILL');
        killed = true;
      }
      const pid = this.up.replicas().find((r) => r.id === one)?.pid;
      await dropDialed(CHAIN, pid, others, dropped);
      await sleep(150);
    }
  }
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) throw new Error('needs root (iptables)');
  log(`seed ${SEED}, ${RUN_MS / 60_000} min, ${KEYS.length} keys, out ${OUT}`);
  const up = new Supervisor();
  up.start();
  if (!(await up.ready(180_000))) throw new Error(`kvs up not ready; see ${OUT}/up.log`);
  const placement = placementEndpoints(up.replicas());
  const rec = new Recorder();
  const rng = new Rng(SEED);
  const nemesis = new Nemesis(up, rng.fork());
  const client = new ShardedClient({ placement, timeoutMs: 10_000, pollMs: 500 });
  let running = true;
  const isRunning = (): boolean => running;
  const workers = [
    ...[1, 2, 3, 4, 5].map((id) => shardedWorker(id, client, rec, rng.fork(), isRunning)),
    ...[6, 7, 8].map((id) => respWorker(id, up, rec, rng.fork(), isRunning)),
  ];
  nemesis.start();
  const progress = setInterval(() => log(`  ${rec.ok} operations answered, ${rec.history.length} recorded`), 60_000);
  try {
    await sleep(RUN_MS);
  } finally {
    running = false;
    clearInterval(progress);
    await Promise.all([nemesis.stop(), ...workers]);
  }
  log(`faults ${JSON.stringify(nemesis.counts)}; healing`);
  const final = await recovered(up, RECOVER_MS * 2);
  if ('stuck' in final) anomaly(`not recovered after the run: ${final.stuck}`);
  if (nemesis.unfinished !== undefined) {
    // A reshard cut short by a supervisor kill: one more, with the faults healed, must complete it.
    const n = nemesis.unfinished;
    log(`finishing the interrupted reshard to ${n}`);
    const done = await run(process.execPath, [BIN, 'reshard', '--shards', String(n), '--data', DATA], { timeout: 300_000, maxBuffer: 16 << 20 }).then(
      () => true,
      (e: { stderr?: string; code?: number; signal?: string }) => (anomaly(`the reshard to ${n} after healing failed (${e.code ?? e.signal}): ${(e.stderr ?? '').slice(-2000)}`), false),
    );
    if (done) log(`reshard to ${n} done`);
  }

  // Every key read once more, recorded: an acknowledged write that is lost shows as a stale read.
  const dec = new TextDecoder();
  let finalReads = 0;
  for (const key of KEYS) {
    const op: Operation = { clientId: 0, op: 'get', key, call: now(), note: 'final read' };
    try {
      const v = await client.get(key);
      op.output = v === null ? null : dec.decode(v);
      op.ret = now();
      rec.history.push(op);
      finalReads++;
    } catch (e) {
      anomaly(`final read of ${key} failed: ${String(e)}`);
    }
  }
  client.close();
  const how = await up.halt();
  up.close();
  removeChain(CHAIN);
  log(`kvs up stopped (${how})`);

  const completed = rec.history.filter((o) => o.ret !== undefined).length;
  writeFileSync(join(OUT, 'history.json'), JSON.stringify(rec.history));
  writeFileSync(join(OUT, 'not-applied.json'), JSON.stringify(rec.notApplied));
  log(
    `${rec.history.length} operations in the history (${completed} completed, ${rec.history.length - completed} pending: ${JSON.stringify(Object.fromEntries(rec.pendingWhy))}), ` +
      `${rec.notApplied.length} writes answered "not applied", ${finalReads} final reads; recovery ms max ${Math.max(0, ...nemesis.recoverMs)}, ` +
      `median ${nemesis.recoverMs.sort((a, b) => a - b)[nemesis.recoverMs.length >> 1] ?? 0}`,
  );
  const started = Date.now();
  const r = checkHistory(rec.history);
  log(`check: ${r.verdict} in ${Date.now() - started} ms: ${r.text}`);
  if (r.verdict !== 'ok') anomaly(`history ${r.verdict}: ${r.text}`);
  if (r.verdict === 'illegal') {
    // Would it pass with the "not applied" writes pending? Tells a lost write from a wrong error code.
    const again = checkHistory([...rec.history, ...rec.notApplied.map((o) => ({ ...o, ret: undefined }))], { explain: false });
    log(`  with the "not applied" writes as pending: ${again.verdict}`);
  }
  for (const u of rec.unexpected.slice(0, 50)) anomaly(`unexpected answer: ${u}`);
  // kvs up's "replica exited" lines: each must be one of our kills (SIGKILL) or a stop (0, SIGINT/TERM).
  const crashes = up.exits.filter((e) => !/: (SIGKILL|code 0|SIGINT|SIGTERM)/.test(e));
  for (const c of crashes) anomaly(`replica exit not caused by us: ${c}`);
  log(`${up.exits.length} replica exits reported by kvs up`);
  if (anomalies.length === 0) rmSync(DATA, { recursive: true, force: true });
  log(anomalies.length === 0 ? 'CLEAN' : `${anomalies.length} ANOMALIES:\n${anomalies.join('\n')}`);
  nemesisLog.end();
  return anomalies.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    removeChain(CHAIN);
    console.error(e);
    process.exit(2);
  },
);
