// The load generator: one or more processes running the same loop on shares of the load, started
// at one shared instant, their histograms merged. It samples the servers' CPU and the machine's
// over the measured window, and each process reports its own, so the client's cost is visible.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createDriver, type Protocol } from '../drivers/index.ts';
import type { DriverTarget } from './driver.ts';
import { Histogram } from './histogram.ts';
import { KeySpace } from './keys.ts';
import { preload, runLoop, type LoopResult } from './loop.ts';
import { CpuWindow } from './proc-stat.ts';
import type { LoadSpec } from './workload.ts';

export interface GeneratorConfig {
  protocol: Protocol;
  target: DriverTarget;
  spec: LoadSpec;
  /** Generator processes. */
  procs: number;
  /** Connections per endpoint per process. */
  conns: number;
  sessions: boolean;
  linearizable: boolean;
  /** Write every key once before the measured run. */
  preload: boolean;
  /** Server processes whose CPU is reported. */
  serverPids: number[];
  /** Run in child processes even when procs = 1 (isolates the client, as compare does). */
  fork: boolean;
}

export interface GeneratorResult {
  hist: Histogram;
  ok: number;
  errors: number;
  misses: number;
  lastError: string;
  opsPerS: number;
  windowS: number;
  /** Cores: the generator processes, the servers, and the whole machine. */
  clientCpu: number;
  serverCpu: number;
  /** Context switches per second of the server processes. */
  serverSwitches: number;
  machineBusy: number;
  backlog: number;
  /** Open loop: how late the generator dispatched arrivals, µs (the worst process's p50 and p99). */
  lateP50Us: number;
  lateP99Us: number;
  preloadErrors: number;
  /** Epoch ms when the measured window began. */
  measuredFrom: number;
}

export interface WorkerInit {
  protocol: Protocol;
  target: DriverTarget;
  spec: LoadSpec;
  conns: number;
  sessions: boolean;
  linearizable: boolean;
  slots: number;
  rate: number;
  worker: number;
}

export type ToWorker = { type: 'init'; init: WorkerInit } | { type: 'preload'; from: number; to: number } | { type: 'run'; startAt: number } | { type: 'close' };
export type FromWorker = { type: 'ready' } | { type: 'preloaded'; errors: number; lastError: string } | { type: 'result'; result: LoopResult } | { type: 'failed'; message: string };

/** One share of the load, in this process or a child. */
interface Share {
  ready(): Promise<void>;
  preload(from: number, to: number): Promise<{ errors: number; lastError: string }>;
  run(startAt: number): Promise<LoopResult>;
  close(): Promise<void>;
}

function split(total: number, parts: number, i: number): number {
  return Math.floor(total / parts) + (i < total % parts ? 1 : 0);
}

function inlineShare(init: WorkerInit): Share {
  const space = new KeySpace(init.spec.keys, init.spec.keySize, init.spec.valueSize);
  const driverP = createDriver(init.protocol, {
    target: init.target,
    space,
    slots: init.slots,
    conns: init.conns,
    sessions: init.sessions,
    linearizable: init.linearizable,
    worker: init.worker,
  });
  const connected = driverP.then(async (d) => {
    await d.connect();
    return d;
  });
  return {
    ready: async () => void (await connected),
    preload: async (from, to) => preload(await connected, from, to, init.slots),
    run: async (startAt) => runLoop(await connected, init.spec, { slots: init.slots, rate: init.rate, worker: init.worker }, startAt),
    close: async () => (await connected.catch(() => undefined))?.close(),
  };
}

const WORKER = fileURLToPath(new URL('./worker.ts', import.meta.url));

function childShare(init: WorkerInit): Share {
  const child: ChildProcess = fork(WORKER, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiters: { type: FromWorker['type']; resolve: (m: FromWorker) => void; reject: (e: Error) => void }[] = [];
  const fail = (e: Error): void => {
    for (const w of waiters.splice(0)) w.reject(e);
  };
  child.on('message', (m: FromWorker) => {
    if (m.type === 'failed') return fail(new Error(`generator process ${init.worker}: ${m.message}`));
    const i = waiters.findIndex((w) => w.type === m.type);
    if (i >= 0) waiters.splice(i, 1)[0]!.resolve(m);
  });
  child.on('exit', (code) => fail(new Error(`generator process ${init.worker} exited (${code})`)));
  const expect = <T extends FromWorker['type']>(type: T): Promise<Extract<FromWorker, { type: T }>> =>
    new Promise((resolve, reject) => waiters.push({ type, resolve: resolve as (m: FromWorker) => void, reject }));
  const send = (m: ToWorker): void => void child.send(m);
  const ready = expect('ready');
  send({ type: 'init', init });
  return {
    ready: async () => void (await ready),
    preload: async (from, to) => {
      const p = expect('preloaded');
      send({ type: 'preload', from, to });
      return p;
    },
    run: async (startAt) => {
      const p = expect('result');
      send({ type: 'run', startAt });
      return (await p).result;
    },
    close: async () => {
      if (child.exitCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      send({ type: 'close' });
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await gone;
      clearTimeout(t);
    },
  };
}

export async function runGenerator(cfg: GeneratorConfig): Promise<GeneratorResult> {
  const { spec, procs } = cfg;
  const shares: Share[] = [];
  for (let w = 0; w < procs; w++) {
    const init: WorkerInit = {
      protocol: cfg.protocol,
      target: cfg.target,
      spec,
      conns: cfg.conns,
      sessions: cfg.sessions,
      linearizable: cfg.linearizable,
      slots: Math.max(1, split(spec.inflight, procs, w)),
      rate: spec.rate > 0 ? spec.rate / procs : 0,
      worker: w,
    };
    shares.push(procs === 1 && !cfg.fork ? inlineShare(init) : childShare(init));
  }
  try {
    await Promise.all(shares.map((s) => s.ready()));
    let preloadErrors = 0;
    if (cfg.preload) {
      let from = 0;
      const loads = shares.map((s, w) => {
        const n = split(spec.keys, procs, w);
        const p = s.preload(from, from + n);
        from += n;
        return p;
      });
      for (const r of await Promise.all(loads)) preloadErrors += r.errors;
    }
    // A shared start instant a little ahead, so every process begins together.
    const startAt = Date.now() + 100;
    const cpu = new CpuWindow(cfg.serverPids);
    const mStart = startAt + spec.warmupS * 1000;
    const t1 = setTimeout(() => cpu.start(), mStart - Date.now());
    let cpuOut: ReturnType<CpuWindow['stop']> | undefined;
    const t2 = setTimeout(() => (cpuOut = cpu.stop()), mStart + spec.durationS * 1000 - Date.now());
    const results = await Promise.all(shares.map((s) => s.run(startAt)));
    clearTimeout(t1);
    clearTimeout(t2);
    // The loop may finish a hair before our timer: close the CPU window now then.
    cpuOut ??= cpu.stop();
    const hist = new Histogram();
    let ok = 0;
    let errors = 0;
    let misses = 0;
    let clientCpuUs = 0;
    let backlog = 0;
    let lateP50Us = 0;
    let lateP99Us = 0;
    let windowS = 0;
    let lastError = '';
    for (const r of results) {
      hist.add(Histogram.fromJSON(r.hist));
      ok += r.ok;
      errors += r.errors;
      misses += r.misses;
      clientCpuUs += r.cpuUs;
      backlog += r.backlog;
      lateP50Us = Math.max(lateP50Us, r.lateP50Us);
      lateP99Us = Math.max(lateP99Us, r.lateP99Us);
      windowS = Math.max(windowS, r.windowS);
      lastError ||= r.lastError;
    }
    return {
      hist,
      ok,
      errors,
      misses,
      lastError,
      opsPerS: ok / spec.durationS,
      windowS,
      clientCpu: clientCpuUs / 1e6 / spec.durationS,
      serverCpu: cpuOut?.pids ?? NaN,
      serverSwitches: cpuOut?.switchesPerS ?? NaN,
      machineBusy: cpuOut?.machineBusy ?? NaN,
      backlog,
      lateP50Us,
      lateP99Us,
      preloadErrors,
      measuredFrom: mStart,
    };
  } finally {
    await Promise.all(shares.map((s) => s.close()));
  }
}

/** Writes every key of the spec's key space once (what read workloads need), in this process. */
export async function preloadKeys(protocol: Protocol, target: DriverTarget, spec: LoadSpec, slots = 256): Promise<{ errors: number; lastError: string }> {
  const share = inlineShare({ protocol, target, spec, conns: 1, sessions: false, linearizable: true, slots, rate: 0, worker: 0 });
  try {
    await share.ready();
    return await share.preload(0, spec.keys);
  } finally {
    await share.close();
  }
}
