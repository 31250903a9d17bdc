// CPU time from /proc: per process (servers, tools we spawn) and for the whole machine, so a run
// reports what the client, the servers and everything else (other people's jobs) used. On 2 cores
// the client is part of the budget, and a busy neighbour explains a bad run.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

let clkTck = 0;
function ticksPerSecond(): number {
  if (clkTck === 0) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** Fields of /proc/<pid>/stat after the command name (which may contain spaces and parens). */
function statFields(pid: number | 'self'): string[] | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** utime + stime of a process in seconds, or NaN when it is gone. */
export function processCpuSeconds(pid: number): number {
  const f = statFields(pid);
  // After the name: state is field 3, utime 14 and stime 15 (1-based in proc(5)) → indexes 11, 12.
  return f ? (Number(f[11]) + Number(f[12])) / ticksPerSecond() : NaN;
}

/**
 * Context switches (voluntary + involuntary) of every thread of a process, or NaN when it is gone.
 * On this kind of VM each switch is costly: the count per request explains CPU per request.
 */
export function processContextSwitches(pid: number): number {
  try {
    let n = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      for (const m of status.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)/gm)) n += Number(m[1]);
    }
    return n;
  } catch {
    return NaN;
  }
}

/** CPU seconds of this process's children that have exited and been waited for (cutime + cstime). */
export function reapedChildrenCpuSeconds(): number {
  const f = statFields('self');
  return f ? (Number(f[13]) + Number(f[14])) / ticksPerSecond() : 0;
}

/** Busy and total CPU seconds of the machine since boot (all cores), from /proc/stat. */
export function machineCpuSeconds(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0); // idle + iowait
  return { busy: (total - idle) / ticksPerSecond(), total: total / ticksPerSecond() };
}

/** Samples a set of pids and the machine at two instants. */
export class CpuWindow {
  private p0 = new Map<number, number>();
  private cs0 = new Map<number, number>();
  private m0 = { busy: 0, total: 0 };
  private t0 = 0;

  private readonly pids: number[];

  /** Each process counted once: replicas hosted in one process share its pid. */
  constructor(pids: readonly number[]) {
    this.pids = [...new Set(pids)];
  }

  start(): void {
    this.t0 = performance.now();
    for (const pid of this.pids) {
      this.p0.set(pid, processCpuSeconds(pid));
      this.cs0.set(pid, processContextSwitches(pid));
    }
    this.m0 = machineCpuSeconds();
  }

  /**
   * Cores used over the window: by the pids (summed and each) and by the whole machine; and the
   * pids' context switches per second.
   */
  stop(): { seconds: number; pids: number; perPid: Record<number, number>; machineBusy: number; switchesPerS: number } {
    const seconds = (performance.now() - this.t0) / 1000;
    const perPid: Record<number, number> = {};
    let pids = 0;
    let switches = 0;
    for (const pid of this.pids) {
      const used = (processCpuSeconds(pid) - (this.p0.get(pid) ?? NaN)) / seconds;
      perPid[pid] = used;
      if (Number.isFinite(used)) pids += used;
      const cs = processContextSwitches(pid) - (this.cs0.get(pid) ?? NaN);
      if (Number.isFinite(cs)) switches += cs;
    }
    const m = machineCpuSeconds();
    return { seconds, pids, perPid, machineBusy: (m.busy - this.m0.busy) / seconds, switchesPerS: switches / seconds };
  }
}
