// What every benchmark prints: the machine it ran on, and one JSON line per result.
import { cpus, release } from 'node:os';

export function machine(): string {
  const cpu = cpus()[0]?.model ?? 'unknown cpu';
  return `${cpu}, ${cpus().length} cores, Linux ${release()}, Node ${process.version}, ${new Date().toISOString()}`;
}

export function printResult(fields: Record<string, string | number | boolean>): void {
  console.log(JSON.stringify(fields));
}
