// Our JSON logger against pino, writing a replica's typical event (group and replica bound, three
// fields) to /dev/null with synchronous writes, so both pay the same write(2) per line. Reports
// lines/s (wall) and CPU microseconds per line (user + system). Not a test.
//   node --import tsx bench/log.ts [--lines 200000] [--pino DIR]   (DIR: a node_modules holding pino)
import { closeSync, openSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger } from '../src/log/logger.ts';

const { values } = parseArgs({ options: { lines: { type: 'string', default: '200000' }, pino: { type: 'string' } } });
const lines = Number(values.lines);

interface Sink {
  info(fields: Record<string, unknown>, msg: string): void;
}

function measure(name: string, make: (fd: number) => Sink): void {
  const fd = openSync('/dev/null', 'w');
  const log = make(fd);
  const event = { role: 'leader', term: 5, leader: 1 };
  for (let i = 0; i < 10_000; i++) log.info(event, 'raft role changed'); // warm-up
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < lines; i++) log.info(event, 'raft role changed');
  const ns = Number(process.hrtime.bigint() - t0);
  const cpu = process.cpuUsage(cpu0);
  closeSync(fd);
  const perS = Math.round(lines / (ns / 1e9));
  const cpuUs = (cpu.user + cpu.system) / lines;
  console.log(`${name.padEnd(8)} ${String(perS).padStart(9)} lines/s  ${cpuUs.toFixed(2)} µs CPU/line`);
}

measure('ours', (fd) => {
  const log = createLogger({ format: 'json', bindings: { group: 1, replica: 102 }, write: (l) => void writeSync(fd, l) });
  return { info: (f, m) => log.info(m, f) };
});

if (values.pino) {
  // pino is not a dependency: it is loaded from wherever --pino points, only for this comparison.
  const pino = createRequire(join(values.pino, 'x.js'))('pino') as (o: object, d: unknown) => Sink;
  const dest = createRequire(join(values.pino, 'x.js'))('pino').destination as (o: object) => unknown;
  measure('pino', (fd) => pino({ base: { group: 1, replica: 102 }, timestamp: () => `,"ts":"${new Date().toISOString()}"` }, dest({ fd, sync: true })));
}
