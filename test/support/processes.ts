// The replica processes a test cluster runs, by replica id: their stderr (and optionally stdout)
// lines, kill and wait, and a guarantee that none outlives the test process. A failed assertion
// skips a test's own cleanup, and a live child (its stderr piped to us) would keep the test file's
// process, and with it the whole `make test` run, waiting forever: every child still running is
// SIGKILLed when this process exits.
import type { ChildProcess } from 'node:child_process';

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** Tracks `child` until it exits, killing it if this process exits first; returns it. */
export function reapOnExit<T extends ChildProcess>(child: T): T {
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

export class ProcessTable {
  private readonly procs = new Map<number, ChildProcess>();
  /** Each process's stderr chunks, kept across restarts. */
  readonly logs = new Map<number, string[]>();
  /** Each process's stdout lines, for the ones started with `captureStdout`. */
  readonly stdout = new Map<number, string[]>();

  /** Takes over a freshly spawned child: stderr must be piped, stdout too when `captureStdout`. */
  track(id: number, child: ChildProcess, captureStdout = false): void {
    reapOnExit(child);
    if (captureStdout) {
      const out = this.stdout.get(id) ?? [];
      this.stdout.set(id, out);
      let rest = '';
      child.stdout!.on('data', (b: Buffer) => {
        const parts = (rest + b.toString()).split('\n');
        rest = parts.pop() ?? '';
        out.push(...parts);
      });
    }
    const log = this.logs.get(id) ?? [];
    this.logs.set(id, log);
    child.stderr!.on('data', (b: Buffer) => log.push(b.toString()));
    this.procs.set(id, child);
    child.on('exit', () => {
      if (this.procs.get(id) === child) this.procs.delete(id);
    });
  }

  isRunning(id: number): boolean {
    return this.procs.has(id);
  }

  pid(id: number): number | undefined {
    return this.procs.get(id)?.pid;
  }

  /** Sends a signal without waiting (SIGSTOP/SIGCONT). */
  signal(id: number, signal: NodeJS.Signals): void {
    this.procs.get(id)?.kill(signal);
  }

  /** kill -9 (or another signal) and wait for the process to be gone. */
  async kill(id: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.procs.get(id);
    if (!child) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    await gone;
  }

  async killAll(): Promise<void> {
    await Promise.all([...this.procs.keys()].map((id) => this.kill(id)));
  }

  /** Every process's stderr, for a failure message. */
  allLogs(): string {
    return [...this.logs].map(([id, l]) => `--- ${id}\n${l.join('')}`).join('\n');
  }
}
