// Everything written to a socket in one event-loop turn leaves in one writev: the first write of
// the turn corks the socket and uncorks it on the next tick. Many small frames, one syscall.
import type { Writable } from 'node:stream';

const corked = new WeakSet<Writable>();

export function coalesce(s: Writable): void {
  if (corked.has(s)) return;
  corked.add(s);
  s.cork();
  process.nextTick(() => {
    corked.delete(s);
    s.uncork();
  });
}
