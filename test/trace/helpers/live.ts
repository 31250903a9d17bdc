// Shared by the tests that capture for real on lo: whether they can run here,
// and a server on a free port in our range.
import net from 'node:net';
import { ebpfUnavailableReason } from '../../../src/trace/capture.ts';

/**
 * Why the live tests cannot run here, or undefined. With KVS_TRACE_REQUIRE=1
 * (set in CI) a reason is a failure, so the tests cannot silently skip.
 */
export function liveSkipReason(): string | undefined {
  const reason = process.platform !== 'linux' ? 'not Linux' : ebpfUnavailableReason();
  if (reason !== undefined && process.env.KVS_TRACE_REQUIRE === '1') {
    throw new Error(`KVS_TRACE_REQUIRE=1 but live eBPF capture cannot run: ${reason}`);
  }
  if (reason !== undefined) console.log(`# live eBPF capture tests skipped: ${reason}`);
  return reason;
}

// Below the ephemeral range (32768-60999), so only our servers use these.
const PORT_LO = 23400;
const PORT_HI = 23999;

/** Listens on 127.0.0.1 at the first free port of our range. */
export async function listenInRange(onConnection: (s: net.Socket) => void): Promise<net.Server> {
  const start = PORT_LO + (process.pid % (PORT_HI - PORT_LO));
  for (let i = 0; i <= PORT_HI - PORT_LO; i++) {
    const port = PORT_LO + ((start - PORT_LO + i) % (PORT_HI - PORT_LO + 1));
    const server = net.createServer(onConnection);
    const ok = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (ok) return server;
  }
  throw new Error(`no free port in ${PORT_LO}-${PORT_HI}`);
}

export function portOf(server: net.Server): number {
  return (server.address() as net.AddressInfo).port;
}

/** Resolves once `done()` holds, re-checking whenever `emitter` emits `event`. */
export function until(emitter: NodeJS.EventEmitter, event: string, done: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    if (done()) return resolve();
    const check = () => {
      if (!done()) return;
      emitter.off(event, check);
      resolve();
    };
    emitter.on(event, check);
  });
}
