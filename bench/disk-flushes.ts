// How many durable flushes the disk gives in total when 1, 3, 9 or 12 writers flush at once — the
// resource that one LMDB environment per replica divides: every replica's commit is two flushes,
// and a 3 × 3 sharded cluster on one disk has nine replicas flushing where one group has three.
// Each writer is a worker thread doing 4 KiB write + fdatasync in a loop on its own file. Not a test.
//
//   node --import tsx bench/disk-flushes.ts [--seconds 3] [--dir DIR]
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { machine, printResult } from './machine.ts';

interface Job {
  file: string;
  seconds: number;
}

/** The worker's body, as plain JavaScript (workers do not inherit the TypeScript loader). */
const FLUSH_LOOP = `
const { closeSync, fdatasyncSync, openSync, writeSync } = require('node:fs');
const { parentPort, workerData } = require('node:worker_threads');
const fd = openSync(workerData.file, 'w');
const page = Buffer.alloc(4096, 7);
const until = performance.now() + workerData.seconds * 1000;
let n = 0;
while (performance.now() < until) {
  writeSync(fd, page, 0, page.length, (n % 256) * 4096);
  fdatasyncSync(fd);
  n++;
}
closeSync(fd);
parentPort.postMessage(n);
`;

async function run(writers: number, dir: string, seconds: number): Promise<number> {
  const counts = await Promise.all(
    Array.from({ length: writers }, (_, i) => {
      const w = new Worker(FLUSH_LOOP, { eval: true, workerData: { file: join(dir, `w${i}`), seconds } satisfies Job });
      return new Promise<number>((resolve, reject) => {
        w.once('message', (n: number) => resolve(n));
        w.once('error', reject);
      });
    }),
  );
  return counts.reduce((a, b) => a + b, 0) / seconds;
}

{
  const { values: v } = parseArgs({ options: { seconds: { type: 'string', default: '3' }, dir: { type: 'string', default: process.cwd() } } });
  const seconds = Number(v.seconds);
  const dir = mkdtempSync(join(v.dir, '.disk-flushes-'));
  console.log(`# node --import tsx bench/disk-flushes.ts --seconds ${seconds}`);
  console.log(`# ${machine()}; files in ${dir}`);
  try {
    const rates = new Map<number, number[]>();
    // Interleaved rounds, so that a noisy neighbour slows every writer count alike.
    for (let round = 0; round < 3; round++) {
      for (const writers of [1, 3, 9, 12]) {
        const list = rates.get(writers) ?? [];
        list.push(await run(writers, dir, seconds));
        rates.set(writers, list);
      }
    }
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const one = median(rates.get(1)!);
    for (const [writers, list] of rates) {
      const total = median(list);
      console.log(`${String(writers).padStart(2)} writers: ${Math.round(total).toString().padStart(6)} flushes/s in total, ${Math.round(total / writers).toString().padStart(5)} each (${(total / one).toFixed(2)}x one writer's total)`);
      printResult({ bench: 'disk-flushes', system: 'disk', writers, flushes_per_s: Math.round(total), per_writer: Math.round(total / writers) });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
