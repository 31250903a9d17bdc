// One redis-server (Debian's), either with an append-only file fsynced before every reply
// (appendfsync always: durable like the replicated stores, though not replicated) or with
// persistence off (the in-memory ceiling).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { logTail, start, tcpOpen, waitFor, type Managed } from './procs.ts';

export type RedisMode = 'always' | 'none';

export interface RedisServer {
  address: string;
  port: number;
  proc: Managed;
  stop(): Promise<void>;
}

export async function startRedis(dir: string, port: number, mode: RedisMode): Promise<RedisServer> {
  mkdirSync(dir, { recursive: true });
  const persistence = mode === 'always' ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
  const proc = start(`redis-${mode}`, 'redis-server', [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--dir', dir,
    '--save', '',
    ...persistence,
    '--protected-mode', 'no',
    '--daemonize', 'no',
    '--logfile', join(dir, 'redis.log'),
  ], { log: join(dir, 'stdout.log') });
  await waitFor(`redis (${mode}) on port ${port}`, 15_000, async () => {
    if (!proc.running()) throw new Error(`redis-server exited:\n${logTail(proc)}`);
    return (await tcpOpen('127.0.0.1', port)) || undefined;
  });
  return { address: `127.0.0.1:${port}`, port, proc, stop: () => proc.stop() };
}
