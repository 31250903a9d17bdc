// What every benchmark prints: the machine it ran on, and one JSON line per result; and the numeric
// flags the small benchmarks take.
import { cpus, release } from 'node:os';

export function machine(): string {
  const cpu = cpus()[0]?.model ?? 'unknown cpu';
  return `${cpu}, ${cpus().length} cores, Linux ${release()}, Node ${process.version}, ${new Date().toISOString()}`;
}

export function printResult(fields: Record<string, string | number | boolean>): void {
  console.log(JSON.stringify(fields));
}

/** `--name N` from the command line, or `dflt`. */
export function numberFlag(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}
