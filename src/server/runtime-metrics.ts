// The process and Node.js runtime series every Prometheus exporter has (the names prom-client and
// the Go client use, so existing dashboards work): CPU, memory, file descriptors, start time, V8
// heap, GC pauses, event-loop lag, and `kvs_build_info`. Sampled at scrape time except GC pauses
// (a PerformanceObserver) and event-loop lag (the lateness of the Raft tick: loop-lag.ts, reset
// after each scrape).
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PerformanceObserver, constants as perf } from 'node:perf_hooks';
import v8 from 'node:v8';
import type { LagStats, LoopLag } from './loop-lag.ts';
import { Histogram, Sampled, type LabelValues, type Registry } from './metrics.ts';

/** GC pause buckets (seconds), as prom-client's. */
const GC_BUCKETS = [0.001, 0.01, 0.1, 1, 2, 5];

const GC_KINDS: Record<number, string> = {
  [perf.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [perf.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [perf.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [perf.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

export interface BuildInfo {
  version: string;
  commit: string;
  node: string;
}

export class RuntimeMetrics {
  private readonly gcObserver: PerformanceObserver;

  constructor(
    r: Registry,
    private readonly loopLag: LoopLag,
    build: BuildInfo = buildInfo(),
  ) {
    const gauge = (name: string, help: string, f: () => number): void => void r.add(new Sampled(name, help, 'gauge', [], () => [[[], f()]]));
    r.add(new Sampled('process_cpu_seconds_total', 'User and system CPU time spent, in seconds.', 'counter', [], () => {
      const u = process.cpuUsage();
      return [[[], (u.user + u.system) / 1e6]];
    }));
    gauge('process_resident_memory_bytes', 'Resident set size.', () => process.memoryUsage.rss());
    gauge('process_start_time_seconds', 'Start time of the process since the Unix epoch, in seconds.', () => Math.round(Date.now() / 1000 - process.uptime()));
    // Linux /proc only; elsewhere the series are absent rather than wrong.
    if (existsSync('/proc/self/fd')) {
      gauge('process_open_fds', 'Open file descriptors.', openFds);
      const max = maxFds();
      if (max !== undefined) gauge('process_max_fds', 'Limit on open file descriptors (soft RLIMIT_NOFILE).', () => max);
    }
    gauge('nodejs_heap_size_total_bytes', 'V8 heap size.', () => process.memoryUsage().heapTotal);
    gauge('nodejs_heap_size_used_bytes', 'V8 heap in use.', () => process.memoryUsage().heapUsed);
    gauge('nodejs_external_memory_bytes', 'Memory of C++ objects bound to JavaScript objects (Buffers included).', () => process.memoryUsage().external);
    r.add(new Sampled('nodejs_heap_space_size_used_bytes', 'V8 heap in use, by space.', 'gauge', ['space'], () =>
      v8.getHeapSpaceStatistics().map((s): [LabelValues, number] => [[s.space_name.replace(/_space$/, '')], s.space_used_size]),
    ));
    const gc = r.add(new Histogram('nodejs_gc_duration_seconds', 'Garbage collection pauses, by kind.', GC_BUCKETS, ['kind']));
    this.gcObserver = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) gc.observe(e.duration / 1000, [GC_KINDS[(e as { detail?: { kind?: number } }).detail?.kind ?? -1] ?? 'other']);
    });
    this.gcObserver.observe({ entryTypes: ['gc'] });
    // Lateness of the Raft tick since the previous scrape (0 where nothing feeds loopLag).
    const lag = (name: string, help: string, f: (s: LagStats) => number): void => gauge(name, help, () => f(this.loopLag.stats()) / 1000);
    lag('nodejs_eventloop_lag_mean_seconds', 'Mean event-loop delay since the previous scrape.', (s) => s.meanMs);
    lag('nodejs_eventloop_lag_p50_seconds', 'Median event-loop delay since the previous scrape.', (s) => s.p50Ms);
    lag('nodejs_eventloop_lag_p99_seconds', '99th percentile of the event-loop delay since the previous scrape.', (s) => s.p99Ms);
    lag('nodejs_eventloop_lag_max_seconds', 'Largest event-loop delay since the previous scrape.', (s) => s.maxMs);
    r.add(new Sampled('kvs_build_info', 'Build of this replica: package version, git commit, Node.js version (always 1).', 'gauge', ['version', 'commit', 'node'], () => [[[build.version, build.commit, build.node], 1]]));
  }

  /** Called after each render: the lag gauges cover one scrape interval. */
  afterScrape(): void {
    this.loopLag.reset();
  }

  stop(): void {
    this.gcObserver.disconnect();
  }
}

function openFds(): number {
  try {
    return readdirSync('/proc/self/fd').length - 1; // the listing's own descriptor
  } catch {
    return 0;
  }
}

/** The soft "Max open files" of /proc/self/limits (undefined when unlimited or unreadable). */
export function maxFds(limits?: string): number | undefined {
  let text = limits;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return undefined;
    }
  }
  const m = /^Max open files\s+(\d+)/m.exec(text);
  return m ? Number(m[1]) : undefined;
}

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * Version from package.json; commit from KVS_BUILD_COMMIT (set by a packager or an image build),
 * else the checkout's .git HEAD, else "unknown".
 */
export function buildInfo(root = ROOT, env: NodeJS.ProcessEnv = process.env): BuildInfo {
  let version = 'unknown';
  try {
    version = String((JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version?: unknown }).version ?? 'unknown');
  } catch {
    // a relocated build without its package.json
  }
  return { version, commit: env.KVS_BUILD_COMMIT || gitHead(root) || 'unknown', node: process.version };
}

/** The commit .git/HEAD names (a worktree's .git file and packed refs included), without running git. */
export function gitHead(root: string): string | undefined {
  return headOf(join(root, '.git'));
}

function headOf(dotGit: string): string | undefined {
  try {
    let gitDir = dotGit;
    try {
      const file = readFileSync(dotGit, 'utf8').trim();
      if (file.startsWith('gitdir:')) gitDir = resolve(dirname(dotGit), file.slice(7).trim());
    } catch {
      // a directory
    }
    const head = readFileSync(join(gitDir, 'HEAD'), 'utf8').trim();
    if (!head.startsWith('ref:')) return /^[0-9a-f]{40}$/.test(head) ? head : undefined;
    const ref = head.slice(4).trim();
    // A worktree keeps refs in the common dir.
    const common = existsSync(join(gitDir, 'commondir')) ? resolve(gitDir, readFileSync(join(gitDir, 'commondir'), 'utf8').trim()) : gitDir;
    for (const dir of [gitDir, common]) {
      if (existsSync(join(dir, ref))) return readFileSync(join(dir, ref), 'utf8').trim();
    }
    const packed = readFileSync(join(common, 'packed-refs'), 'utf8');
    return packed.split('\n').find((l) => l.endsWith(` ${ref}`))?.slice(0, 40);
  } catch {
    return undefined;
  }
}
