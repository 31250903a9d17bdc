// Seams for tests of a replica whose storage fails (Replica's fatal path, as a failed persist does)
// and of `kvs server` run inside the test process.
import { KvsServer } from '../../src/server/server.ts';

/** Fails `server`'s storage as a failed persist would. */
export function failStorage(server: KvsServer): void {
  (server.replica as unknown as { fatal(e: unknown): void }).fatal(new Error('injected: disk full'));
}

/**
 * Until the returned restore(): every replica started has its storage fail while its links' address
 * is being looked up ('during') or right after its links listen ('after').
 */
export function failStorageAtListen(when: 'during' | 'after'): () => void {
  const proto = KvsServer.prototype as unknown as { listen(this: KvsServer): Promise<void> };
  const listen0 = proto.listen;
  proto.listen = function (this: KvsServer): Promise<void> {
    const listening = listen0.call(this);
    if (when === 'during') {
      failStorage(this);
      return listening;
    }
    return listening.then(() => failStorage(this));
  };
  return () => {
    proto.listen = listen0;
  };
}

/** Until restore(): `last()` is the replica KvsServer.start returned last. */
export function keepStarted(): { last: () => KvsServer | undefined; restore: () => void } {
  const k = KvsServer as unknown as { start: (...a: unknown[]) => Promise<KvsServer> };
  const start0 = k.start;
  let last: KvsServer | undefined;
  k.start = async (...a: unknown[]): Promise<KvsServer> => (last = await start0.apply(KvsServer, a));
  return { last: () => last, restore: () => void (k.start = start0) };
}

/**
 * Runs `body` (which runs `kvs server` in this process) with the log lines it writes on stderr kept
 * in `lines`; afterwards the signal handlers it added are removed and the exit code its fatal path
 * set is cleared, for the test process.
 */
export async function asServerProcess<T>(body: (lines: string[]) => Promise<T>): Promise<T> {
  const lines: string[] = [];
  const write0 = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array): boolean => (lines.push(String(chunk)), true)) as typeof process.stderr.write;
  const [sigterm, sigint] = [process.listeners('SIGTERM'), process.listeners('SIGINT')];
  try {
    return await body(lines);
  } finally {
    process.stderr.write = write0;
    for (const l of process.listeners('SIGTERM')) if (!sigterm.includes(l)) process.removeListener('SIGTERM', l);
    for (const l of process.listeners('SIGINT')) if (!sigint.includes(l)) process.removeListener('SIGINT', l);
    process.exitCode = undefined;
  }
}
