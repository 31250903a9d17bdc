// A starting replica's answer to the kubelet's probes, before its doors open (docs/kubernetes.md
// "Probes"). The steps before the doors are the rejoin check of an empty volume, the wait for the
// cluster configuration and the walk of the store (src/cluster/start-bound.ts): each has a timeout
// of its own that ends the start (and the process) when it runs out, and none blocks the event loop
// (the walk's child process is awaited, not waited for). So on the HTTP door's port this answers:
//   /healthz  200 while the start is within the sum of those bounds for the data file it found,
//             503 once past it: a start stuck on something without a timeout of its own is then
//             restarted by the liveness probe, as a hung process (no answer at all) is;
//   anything else (/readyz included) 503: not ready, so no traffic and no rolling update goes on.
// The startup probe then needs to cover only the process start, not a walk of the whole volume.
import { createServer, type Server } from 'node:http';
import { listenAddress } from '../address/listen.ts';

export interface StartProbe {
  /** Stops answering and frees the port (for the HTTP door); idempotent. */
  close(): Promise<void>;
}

/**
 * Answers on `listen` until closed; the start is overdue `boundMs` after this call, on `now()`'s
 * clock: by default the monotonic one, as the steps' own timers are (the walk's), not the wall
 * clock, which NTP may step forward while a pod starts and so fail the probe of a healthy start.
 * Best effort: a port it cannot take leaves the start as it was (the door reports the port itself).
 */
export async function startProbe(listen: string, boundMs: number, now: () => number = () => performance.now()): Promise<StartProbe> {
  const deadline = now() + boundMs;
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    const live = path === '/healthz' && now() < deadline;
    res.writeHead(live ? 200 : 503, { 'Content-Type': 'text/plain', Connection: 'close' });
    res.end(live ? 'starting\n' : path === '/healthz' ? 'start overdue\n' : 'starting\n');
  });
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }));
  try {
    await listenAddress(server, listen, () => {});
  } catch {
    await close();
  }
  return { close };
}
