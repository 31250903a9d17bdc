// Every process a benchmark starts goes through here, so every exit path stops them all: normal
// end, an exception, Ctrl-C or SIGTERM (e.g. make's timeout). Output goes to a log file per process.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import net from 'node:net';

export interface Managed {
  name: string;
  pid: number;
  child: ChildProcess;
  log: string;
  exited: Promise<void>;
  /** How it ended (signal name or exit code), once it has. */
  exitReason?: string;
  running(): boolean;
  /** SIGTERM, then SIGKILL after graceMs. */
  stop(graceMs?: number): Promise<void>;
}

const live = new Set<Managed>();
let hooked = false;

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const m of live) m.child.kill('SIGKILL');
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      console.error(`\nbench: ${sig}, stopping ${live.size} processes`);
      void stopAll(2000).finally(() => process.exit(130));
    });
  }
}

/** `ipc`: the child gets an IPC channel (child.send), as `kvs host` needs. */
export function start(name: string, cmd: string, args: string[], opts: { log: string; env?: NodeJS.ProcessEnv; cwd?: string; ipc?: boolean }): Managed {
  hookExit();
  const fd = openSync(opts.log, 'a');
  const child = spawn(cmd, args, { stdio: opts.ipc ? ['ignore', fd, fd, 'ipc'] : ['ignore', fd, fd], env: opts.env ?? process.env, cwd: opts.cwd });
  closeSync(fd);
  if (child.pid === undefined) throw new Error(`cannot start ${cmd}`);
  let alive = true;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      m.exitReason = signal ?? `exit code ${code}`;
      alive = false;
      live.delete(m);
      resolve();
    }),
  );
  child.once('error', () => {});
  const m: Managed = {
    name,
    pid: child.pid,
    child,
    log: opts.log,
    exited,
    running: () => alive,
    stop: async (graceMs = 5000) => {
      if (!alive) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
    },
  };
  live.add(m);
  return m;
}

/** The last lines of a process's log, for error messages (the run directory may be deleted). */
export function logTail(m: Managed, lines = 8): string {
  try {
    return readFileSync(m.log, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/**
 * Keeps a server running: restarted (same command, same data) when it exits without stop() —
 * on a shared machine another job's cleanup may kill it. `current()` is the live process.
 */
export interface Supervised {
  current(): Managed;
  restarts: string[];
  stop(graceMs?: number): Promise<void>;
}

const supervisors = new Set<{ halt(): void }>();

export function supervise(launch: () => Managed, onRestart: (why: string) => void): Supervised {
  let stopping = false;
  supervisors.add({ halt: () => (stopping = true) });
  const restarts: string[] = [];
  let cur = launch();
  const watch = (m: Managed): void => {
    void m.exited.then(() => {
      if (stopping) return;
      const why = `${m.name} ended (${m.exitReason}) at ${new Date().toISOString()}; restarted`;
      restarts.push(why);
      onRestart(why);
      setTimeout(() => {
        if (stopping) return;
        cur = launch();
        watch(cur);
      }, 300);
    });
  };
  watch(cur);
  return {
    current: () => cur,
    restarts,
    stop: async (graceMs) => {
      stopping = true;
      await cur.stop(graceMs);
    },
  };
}

export async function stopAll(graceMs = 5000): Promise<void> {
  for (const s of supervisors) s.halt();
  await Promise.all([...live].map((m) => m.stop(graceMs)));
}

export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < until) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last}` : ''}`);
}

export function tcpOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
