// The default local cluster at rest: `kvs up` started as a user starts it, left idle, and what its
// replica processes cost meanwhile: CPU (cores), context switches per second (on this kind of VM
// every wake-up is a costly switch, so this is what idle CPU follows) and resident memory. Issue
// 16's targets: ≤ 0.05 cores and ≤ 600 MB. Both layouts, one after the other in the same run: one
// process per replica (`--processes each`) and the default 3 host processes. Not a test.
//   node --import tsx bench/idle.ts [--seconds 30] [--settle 5] [--shards 3] [--replicas 3] [--base-port 27001] [--layouts each,3]
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { processContextSwitches, processCpuSeconds } from './load/proc-stat.ts';
import { machine, numberFlag as arg, printResult } from './machine.ts';
import { start, stopAll, waitFor } from './systems/procs.ts';

const SECONDS = arg('seconds', 30);
const SETTLE = arg('settle', 5);
const SHARDS = arg('shards', 3);
const REPLICAS = arg('replicas', 3);
const BASE_PORT = arg('base-port', 27001);
const BIN = resolve(import.meta.dirname, '../bin/kvs.js');
const at = process.argv.indexOf('--layouts');
const LAYOUTS = (at > 0 ? process.argv[at + 1]! : 'each,3').split(',');

console.log(`# idle: kvs up --shards ${SHARDS} --replicas ${REPLICAS} --processes ${LAYOUTS.join(' | ')}, ${SETTLE} s to settle, then ${SECONDS} s measured`);
console.log(`# ${machine()}`);
console.log(`# command: node --import tsx bench/idle.ts --seconds ${SECONDS} --settle ${SETTLE} --shards ${SHARDS} --replicas ${REPLICAS} --base-port ${BASE_PORT} --layouts ${LAYOUTS.join(',')}`);

/** Pids whose parent is `parent` (the replicas `kvs up` started). */
function childrenOf(parent: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const s = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]) === parent) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

function rssMb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function measure(layout: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'kvs-idle-'));
  try {
    const args = [BIN, 'up', '--data', join(dir, 'data'), '--shards', String(SHARDS), '--replicas', String(REPLICAS), '--processes', layout, '--base-port', String(BASE_PORT), '--log-format', 'json'];
    const up = start(`kvs-up-${layout}`, process.execPath, args, { log: join(dir, 'up.log') });
    const t0 = performance.now();
    await waitFor('kvs up ready', 180_000, async () => (readFileSync(up.log, 'utf8').includes('ready in') ? true : undefined));
    const readyS = (performance.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, SETTLE * 1000));
    const pids = childrenOf(up.pid);
    const cpu0 = pids.map(processCpuSeconds);
    const sw0 = pids.map(processContextSwitches);
    const w0 = performance.now();
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    const wall = (performance.now() - w0) / 1000;
    const cores = pids.reduce((s, p, i) => s + (processCpuSeconds(p) - cpu0[i]!), 0) / wall;
    const switches = pids.reduce((s, p, i) => s + (processContextSwitches(p) - sw0[i]!), 0) / wall;
    const rss = pids.reduce((s, p) => s + rssMb(p), 0);
    console.log(`--processes ${layout}: ${pids.length} processes, ready in ${readyS.toFixed(1)} s; idle ${cores.toFixed(3)} cores (target ≤ 0.05), ${Math.round(switches)} context switches/s, ${Math.round(rss)} MB resident (target ≤ 600)`);
    printResult({ bench: 'idle', layout, shards: SHARDS, replicas: REPLICAS, processes: pids.length, ready_s: Number(readyS.toFixed(1)), seconds: Number(wall.toFixed(1)), cores: Number(cores.toFixed(3)), switches_per_s: Math.round(switches), rss_mb: Math.round(rss) });
  } finally {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const layout of LAYOUTS) await measure(layout);
